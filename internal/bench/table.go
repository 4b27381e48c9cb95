package bench

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the results as a table: scenario, figure, unit, value,
// target and whether it was met (by how much), then what did not run, then
// notes. It starts with the machine caveat: the figures are this machine's.
func (r *Results) WriteTable(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "chatreport-bench — %s, %d CPU(s) (GOMAXPROCS %d), %s, load before %s after %s\n",
		m.CPUModel, m.CPUs, m.GOMAXPROCS, m.GoVersion, loads(m.LoadBefore), loads(m.LoadAfter))
	fmt.Fprintf(w, "Caveat: %s.\n\n", m.Caveat)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\tunit\tvalue\ttarget\tmet? (value/target)\t")
	for _, f := range r.Figures {
		target, met := "—", "—"
		if f.Target != nil {
			target = f.Target.Op + " " + FormatValue(f.Target.Value)
			met = "no"
			if f.Met != nil && *f.Met {
				met = "yes"
			}
			if f.Target.Value != 0 {
				met += " (" + ratio(f.Value/f.Target.Value) + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", f.where(), f.Name, f.Unit, FormatValue(f.Value), target, met)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range r.NotRun {
		fmt.Fprintf(w, "not run: %s: %s\n", s.Scenario, s.Reason)
	}
	fmt.Fprintln(w, "\nNotes:")
	for _, f := range r.Figures {
		if f.Note != "" {
			fmt.Fprintf(w, "  %s / %s: %s\n", f.where(), f.Name, f.Note)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Profiles)) {
		fmt.Fprintf(w, "  profile %s: %s (go tool pprof -top %s)\n", name, r.Profiles[name], r.Profiles[name])
	}
	_, err := fmt.Fprintf(w, "  total time: %.0f s\n", r.Duration)
	return err
}

// where is the figure's scenario, and its phase if any.
func (f *Figure) where() string {
	if f.Phase == "" {
		return f.Scenario
	}
	return f.Scenario + "/" + f.Phase
}

// ratio prints value/target: 0.12× is 12% of the target, 47× is 47 times it.
func ratio(r float64) string {
	switch {
	case r >= 10:
		return strconv.FormatFloat(r, 'f', 0, 64) + "×"
	case r >= 0.1:
		return strconv.FormatFloat(r, 'f', 2, 64) + "×"
	default:
		return strconv.FormatFloat(r, 'f', 3, 64) + "×"
	}
}

func loads(l []float64) string {
	if len(l) == 0 {
		return "?"
	}
	parts := make([]string, len(l))
	for i, v := range l {
		parts[i] = strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strings.Join(parts, "/")
}

// FormatValue prints v with thousands separators above 1,000 and three
// significant digits below.
func FormatValue(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1000:
		s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		if neg {
			return "-" + b.String()
		}
		return b.String()
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}
