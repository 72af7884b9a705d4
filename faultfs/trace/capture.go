package trace

// Capture mode (faultfs --capture DIR, faultfs.Config.CaptureDir) writes,
// besides capture records in the trace (Kind == KindCapture), a capture
// directory that package crashes reads offline. These names are its
// layout and the Op values of capture records.
const (
	// CaptureWrites is the file of written bytes in the capture directory:
	// every persisted write's data, one after another; a "write" record's
	// Cap is the offset of its Len bytes.
	CaptureWrites = "writes.bin"
	// CaptureSnapshot is the directory holding a copy of every regular
	// file of the backing directory at mount time.
	CaptureSnapshot = "snapshot"
	// CaptureSubdir is the usual name of the capture directory inside a
	// run directory.
	CaptureSubdir = "capture"
)

// Ops of capture records.
const (
	CapOpSnapshot OpName = "snapshot" // first record: N files, Len bytes copied; Path is the capture dir
	CapOpWrite    OpName = "write"    // Off, Len; Cap = offset of the bytes in writes.bin; T = completion
	CapOpFsync    OpName = "fsync"    // a fsync/fdatasync that succeeded (a barrier); T = its start
	CapOpTruncate OpName = "truncate" // Off = the new size; T = completion
	CapOpError    OpName = "error"    // capture stopped (Fault says why); later records are missing
)
