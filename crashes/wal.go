package crashes

import "encoding/binary"

// walValidLen returns the length of the prefix of a WAL file that SQLite's
// recovery can use: the header and every frame up to the first one whose
// salt or checksum does not match (SQLite stops reading there). The bytes
// after it can never be read, so an image may drop them: SQLite then reads
// less on every open, with the same result. A WAL whose header is invalid
// is empty to SQLite (0 frames): its length is returned unchanged, so the
// image keeps exactly what the disk would.
func walValidLen(w []byte) int {
	const hdrSize, frameHdr = 32, 24
	if len(w) < hdrSize {
		return len(w)
	}
	magic := binary.BigEndian.Uint32(w[0:4])
	if magic&^1 != 0x377f0682 {
		return len(w)
	}
	ps := int(binary.BigEndian.Uint32(w[8:12]))
	if ps < 512 || ps > 65536 || ps&(ps-1) != 0 || binary.BigEndian.Uint32(w[4:8]) != 3007000 {
		return len(w)
	}
	big := magic&1 == 1
	s1, s2 := walChecksum(big, w[0:24], 0, 0)
	if s1 != binary.BigEndian.Uint32(w[24:28]) || s2 != binary.BigEndian.Uint32(w[28:32]) {
		return len(w)
	}
	end := hdrSize
	for off := hdrSize; off+frameHdr+ps <= len(w); off += frameHdr + ps {
		h := w[off : off+frameHdr]
		if binary.BigEndian.Uint32(h[0:4]) == 0 || string(h[8:16]) != string(w[16:24]) {
			break
		}
		s1, s2 = walChecksum(big, h[0:8], s1, s2)
		s1, s2 = walChecksum(big, w[off+frameHdr:off+frameHdr+ps], s1, s2)
		if s1 != binary.BigEndian.Uint32(h[16:20]) || s2 != binary.BigEndian.Uint32(h[20:24]) {
			break
		}
		end = off + frameHdr + ps
	}
	return end
}

// walChecksum is SQLite's walChecksumBytes: pairs of 32-bit words (big- or
// little-endian as the WAL magic says) summed into s1, s2.
func walChecksum(big bool, b []byte, s1, s2 uint32) (uint32, uint32) {
	if big {
		for i := 0; i+8 <= len(b); i += 8 {
			s1 += binary.BigEndian.Uint32(b[i:]) + s2
			s2 += binary.BigEndian.Uint32(b[i+4:]) + s1
		}
		return s1, s2
	}
	for i := 0; i+8 <= len(b); i += 8 {
		s1 += binary.LittleEndian.Uint32(b[i:]) + s2
		s2 += binary.LittleEndian.Uint32(b[i+4:]) + s1
	}
	return s1, s2
}
