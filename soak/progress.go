package soak

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress shows a shard's progress. On a terminal it keeps one live line
// (cases done/total, reproduced, held, finding, unexpected and other
// outcomes so far, ETA, the running case) and prints a permanent line only
// for a case whose outcome is not reproduced, held or finding; off a
// terminal it prints one line per case. It is safe for concurrent use.
type Progress struct {
	w      io.Writer
	tty    bool
	label  string
	budget time.Duration
	now    func() time.Time

	mu      sync.Mutex
	start   time.Time
	total   int
	done    int
	spent   time.Duration // summed elapsed of finished cases
	counts  map[string]int
	current string
	caseAt  time.Time
}

// NewProgress writes to w, live when tty; label prefixes every line
// (e.g. "soak 2/8"); budget bounds the ETA (0: none).
func NewProgress(w io.Writer, tty bool, label string, budget time.Duration) *Progress {
	return &Progress{w: w, tty: tty, label: label, budget: budget, now: time.Now, counts: map[string]int{}}
}

// Update takes a case starting or ending (it is an Options.Progress).
func (p *Progress) Update(ev CaseProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.start.IsZero() {
		p.start = p.now()
	}
	p.total = ev.Total
	if !ev.End {
		p.current, p.caseAt = ev.Case.String(), p.now()
		if p.tty {
			p.draw()
		}
		return
	}
	p.done++
	p.spent += ev.Elapsed
	p.counts[ev.Outcome]++
	p.current = ""
	line := fmt.Sprintf("%s [%s] %s: %s %.1fs %s", p.label, p.position(ev.Index), ev.Case, ev.Outcome, ev.Elapsed.Seconds(), ev.Dir)
	if ev.Err != nil {
		line += "\n  error: " + ev.Err.Error()
	}
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	if !quiet(ev.Outcome) {
		fmt.Fprintf(p.w, "\r\033[K%s\n", line)
	}
	p.draw()
}

// Tick redraws the live line (call it while a case runs).
func (p *Progress) Tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && !p.start.IsZero() {
		p.draw()
	}
}

// Close ends the live line.
func (p *Progress) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// Line is the live line's text.
func (p *Progress) Line() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.line()
}

func (p *Progress) draw() { fmt.Fprintf(p.w, "\r\033[K%s", p.line()) }

func (p *Progress) position(i int) string {
	if p.total > 0 {
		return fmt.Sprintf("%d/%d", i, p.total)
	}
	return fmt.Sprint(i)
}

func (p *Progress) line() string {
	var b strings.Builder
	b.WriteString(p.label + " ")
	if p.total > 0 {
		fmt.Fprintf(&b, "%d/%d done", p.done, p.total)
	} else {
		fmt.Fprintf(&b, "%d done", p.done)
	}
	other := 0
	for o, n := range p.counts {
		if o != "reproduced" && o != "held" && o != "finding" && o != "unexpected" {
			other += n
		}
	}
	fmt.Fprintf(&b, " · reproduced %d · held %d · finding %d · unexpected %d", p.counts["reproduced"], p.counts["held"], p.counts["finding"], p.counts["unexpected"])
	if other > 0 {
		fmt.Fprintf(&b, " · other %d", other)
	}
	if eta, ok := p.eta(); ok {
		fmt.Fprintf(&b, " · ETA %s", eta.Round(time.Second))
	}
	if p.current != "" {
		fmt.Fprintf(&b, " · %s %.0fs", p.current, p.now().Sub(p.caseAt).Seconds())
	}
	return b.String()
}

// eta is the mean case time × the cases left, bounded by what is left of
// the budget.
func (p *Progress) eta() (time.Duration, bool) {
	var left time.Duration
	known := false
	if p.total > 0 && p.done > 0 {
		left = p.spent / time.Duration(p.done) * time.Duration(p.total-p.done)
		known = true
	}
	if p.budget > 0 {
		b := p.budget - p.now().Sub(p.start)
		if b < 0 {
			b = 0
		}
		if !known || b < left {
			left, known = b, true
		}
	}
	return left, known
}

// quiet reports whether an outcome needs no line of its own on a terminal.
func quiet(outcome string) bool {
	return outcome == "reproduced" || outcome == "held" || outcome == "finding"
}
