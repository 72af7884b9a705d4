package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the report as an aligned table: median commits/s per
// target, then the ratios, then one line per goal saying whether it was met.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "commits/s of a 1-row INSERT loop (autocommit), N=%d, median of %d, %d CPUs, %s, took %s\n\n",
		r.N, r.Repeat, r.NumCPU, r.GoVersion, r.Elapsed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"driver", "mode", "sync"}
	head = append(head, r.Targets...)
	ratios := r.ratios()
	for _, q := range ratios {
		head = append(head, q.Name)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, row := range r.Rows {
		cells := []string{row.Driver, row.Mode, row.Sync}
		for _, t := range r.Targets {
			cells = append(cells, fmt.Sprintf("%.0f", row.Rates[t].Median))
		}
		for _, q := range ratios {
			cells = append(cells, fmt.Sprintf("%.2f", row.Ratios[q.Name]))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, q := range ratios {
		if q.Goal == 0 {
			continue
		}
		met, worst, worstRow := 0, 0.0, ""
		for i, row := range r.Rows {
			v := row.Ratios[q.Name]
			if v >= q.Goal {
				met++
			}
			if i == 0 || v < worst {
				worst, worstRow = v, row.Driver+" "+row.Mode+" "+row.Sync
			}
		}
		verdict := "MET"
		if met < len(r.Rows) {
			verdict = "NOT MET"
		}
		fmt.Fprintf(w, "goal: %s (%s >= %.2f): %s, met in %d of %d rows (lowest %.2f: %s)\n",
			q.GoalText, q.Name, q.Goal, verdict, met, len(r.Rows), worst, worstRow)
	}
	if r.Plan20 != "" {
		fmt.Fprintf(w, "fuse20: %d rules loaded, %d faults fired (must be 0)\n", countRules(r.Plan20), r.Fired20)
	}
	fmt.Fprintln(w, "reference: a plain go-fuse loopback measured fuse/bare ~0.5 at synchronous=FULL on disk (see notes).")
	return nil
}

// ratios returns the Ratios whose two targets were both measured.
func (r *Report) ratios() []Ratio {
	var out []Ratio
	for _, q := range Ratios {
		if slices.Contains(r.Targets, q.Num) && slices.Contains(r.Targets, q.Den) {
			out = append(out, q)
		}
	}
	return out
}

func countRules(plan string) int {
	n := 0
	for _, line := range strings.Split(plan, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			n++
		}
	}
	return n
}
