package scenarios

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultScale is how many times faster than the wall clock board time runs
// in a scenario: at 100, the board's 30 s crash grace passes in 300 ms and a
// 60 s gateway tick takes 600 ms.
const DefaultScale = 100

// Clock is the scaled clock every process of one run shares. Board time
// equals wall time at Anchor and then runs Scale times faster, so all
// processes agree on board time without talking to each other. It
// implements kanbancore.Clock.
type Clock struct {
	Anchor time.Time // wall instant where board time == wall time
	Scale  float64   // board seconds per wall second (>= 1)
}

// NewClock returns a clock anchored now.
func NewClock(scale float64) Clock {
	if scale < 1 {
		scale = 1
	}
	return Clock{Anchor: time.Now(), Scale: scale}
}

// Now returns board time.
func (c Clock) Now() time.Time {
	wall := time.Since(c.Anchor)
	return c.Anchor.Add(time.Duration(float64(wall) * c.Scale))
}

// Wall converts a board-time duration (e.g. the notifier's 5 s poll) into
// the wall-clock duration a process sleeps for it.
func (c Clock) Wall(board time.Duration) time.Duration {
	if c.Scale <= 0 {
		return board
	}
	return time.Duration(float64(board) / c.Scale)
}

// Board converts a wall-clock duration into board time.
func (c Clock) Board(wall time.Duration) time.Duration {
	return time.Duration(float64(wall) * c.Scale)
}

// String encodes the clock as "ANCHOR_UNIX_NANOS:SCALE" for a child's
// command line.
func (c Clock) String() string {
	return fmt.Sprintf("%d:%g", c.Anchor.UnixNano(), c.Scale)
}

// ParseClock decodes Clock.String.
func ParseClock(s string) (Clock, error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return Clock{}, fmt.Errorf("scenarios: bad clock %q (want ANCHOR_NS:SCALE)", s)
	}
	ns, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return Clock{}, fmt.Errorf("scenarios: bad clock anchor %q: %v", a, err)
	}
	sc, err := strconv.ParseFloat(b, 64)
	if err != nil || sc < 1 {
		return Clock{}, fmt.Errorf("scenarios: bad clock scale %q", b)
	}
	return Clock{Anchor: time.Unix(0, ns), Scale: sc}, nil
}
