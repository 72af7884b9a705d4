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
// outcomes so far, ETA, the longest-running case and how many more run)
// and prints a permanent line only for a case whose outcome is not
// reproduced, held or finding; off a terminal it prints one line per case.
// A case's line counts it among the cases done ([done/total]), so that
// cases ending out of order still count up. It is safe for concurrent use.
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
	running map[int]runningCase // by CaseProgress.Index
	peak    int                 // the most cases seen running at once
}

// runningCase is a case in flight: its name and when it started.
type runningCase struct {
	name string
	at   time.Time
}

// NewProgress writes to w, live when tty; label prefixes every line
// (e.g. "soak 2/8"); budget bounds the ETA (0: none).
func NewProgress(w io.Writer, tty bool, label string, budget time.Duration) *Progress {
	return &Progress{w: w, tty: tty, label: label, budget: budget, now: time.Now, counts: map[string]int{}, running: map[int]runningCase{}}
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
		p.running[ev.Index] = runningCase{ev.Case.String(), p.now()}
		p.peak = max(p.peak, len(p.running))
		if p.tty {
			p.draw()
		}
		return
	}
	p.done++
	p.spent += ev.Elapsed
	p.counts[ev.Outcome]++
	delete(p.running, ev.Index)
	line := fmt.Sprintf("%s [%s] %s: %s %.1fs %s", p.label, p.position(p.done), ev.Case, ev.Outcome, ev.Elapsed.Seconds(), ev.Dir)
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
	if r, ok := p.longestRunning(); ok {
		fmt.Fprintf(&b, " · %s %.0fs", r.name, p.now().Sub(r.at).Seconds())
		if n := len(p.running) - 1; n > 0 {
			fmt.Fprintf(&b, " +%d running", n)
		}
	}
	return b.String()
}

// longestRunning is the case running that started first (ok false when
// none runs).
func (p *Progress) longestRunning() (r runningCase, ok bool) {
	for _, c := range p.running {
		if !ok || c.at.Before(r.at) || (c.at.Equal(r.at) && c.name < r.name) {
			r, ok = c, true
		}
	}
	return r, ok
}

// eta is the mean case time × the cases left, shared among the cases
// that run at once (the most seen so far, at most the cases left), bounded
// by what is left of the budget.
func (p *Progress) eta() (time.Duration, bool) {
	var left time.Duration
	known := false
	if p.total > 0 && p.done > 0 {
		n := p.total - p.done
		left = p.spent / time.Duration(p.done) * time.Duration(n) / time.Duration(max(min(p.peak, n), 1))
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
