package kanbancore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"os"
)

func TestSwitchSetAndList(t *testing.T) {
	s := Legacy()
	if err := s.Set("page_count_check=raw-read"); err != nil || s.PageCountCheck != "raw-read" {
		t.Fatalf("Set: %v, %q", err, s.PageCountCheck)
	}
	if err := s.Set("init_flock", "bounded"); err != nil || s.InitFlock != "bounded" {
		t.Fatalf("Set two-arg: %v", err)
	}
	if err := s.Set("crash_grace=300ms"); err != nil || s.CrashGrace != 300*time.Millisecond {
		t.Fatalf("duration: %v %v", err, s.CrashGrace)
	}
	err := s.Set("page_count_check=raw")
	if err == nil || !strings.Contains(err.Error(), "off | raw-read | pragma-stat | skip-in-wal") {
		t.Fatalf("invalid value error %v does not name the valid values", err)
	}
	err = s.Set("no_such_switch=1")
	if err == nil || !strings.Contains(err.Error(), "wal_policy") {
		t.Fatalf("unknown switch error %v does not list switches", err)
	}
	if err := s.Set("secure_delete=maybe"); err == nil {
		t.Fatal("bool accepted maybe")
	}
	l := s.List()
	if len(l) != len(SwitchNames()) || len(l) < 20 {
		t.Fatalf("List has %d rows", len(l))
	}
	for _, row := range l {
		if row.Doc == "" || row.Value == "" {
			t.Errorf("switch %s lacks doc or value", row.Name)
		}
		var u Switches
		if err := u.Set(row.Name, row.Value); err != nil {
			t.Errorf("value %q of %s does not round-trip: %v", row.Value, row.Name, err)
		}
	}
	for _, p := range Profiles() {
		if err := p.Switches.Validate(); err != nil {
			t.Errorf("profile %s: %v", p.Name, err)
		}
		got, err := ProfileByName(p.Name)
		if err != nil || got != p.Switches {
			t.Errorf("ProfileByName(%s): %v", p.Name, err)
		}
	}
	if _, err := ProfileByName("nope"); err == nil || !strings.Contains(err.Error(), "merged33482") {
		t.Fatalf("unknown profile error %v", err)
	}
	// The profiles differ where the history says.
	if PR32857().CorruptLatch != "backoff" || Merged33482().CorruptLatch != "quarantine" ||
		Legacy().PageCountCheck != "off" || PR32857().PageCountCheck != "raw-read" || Hardened().PageCountCheck != "skip-in-wal" {
		t.Fatal("profile history mismatch")
	}
}

// TestInitFlock: with <db>.init.lock held elsewhere, "none" opens at once,
// "bounded" proceeds after its timeout, "unbounded" waits until ctx ends.
func TestInitFlock(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d Driver) {
		for _, mode := range []string{"none", "bounded", "unbounded"} {
			t.Run(mode, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "kanban.db")
				f, err := os.OpenFile(path+".init.lock", os.O_RDWR|os.O_CREATE, 0o644)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
					t.Fatal(err)
				}
				s := Hardened()
				s.InitFlock, s.InitFlockTimeout = InitFlock(mode), 300*time.Millisecond
				ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
				defer cancel()
				start := time.Now()
				c, err := Open(ctx, path, Options{Driver: d, Switches: s})
				el := time.Since(start)
				if c != nil {
					c.Close()
				}
				switch mode {
				case "none":
					if err != nil || el > 250*time.Millisecond {
						t.Fatalf("none: %v after %v", err, el)
					}
				case "bounded":
					if err != nil || el < 300*time.Millisecond || el > 1200*time.Millisecond {
						t.Fatalf("bounded: %v after %v, want success after ~300ms", err, el)
					}
				case "unbounded":
					if err == nil || el < 1400*time.Millisecond {
						t.Fatalf("unbounded: %v after %v, want ctx deadline", err, el)
					}
				}
			})
		}
	})
}
