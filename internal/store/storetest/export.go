package storetest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/chatreport/chatreport/internal/report"
)

// ExportDetails runs s's Export and calls fn with every session it exports,
// decoded, in order: the suite checks what is exported, whatever the
// format. It stops at fn's first error.
func ExportDetails(ctx context.Context, s Store, f report.Filter, fn func(report.Detail) error) error {
	return s.Export(ctx, f, func() report.Encoder { return detailEncoder{} }, func(chunk []byte, ends []int) error {
		start := 0
		for _, end := range ends {
			if end < start || end > len(chunk) {
				return fmt.Errorf("export: a session ends at %d, after %d, in a chunk of %d bytes", end, start, len(chunk))
			}
			var d report.Detail
			if err := json.Unmarshal(chunk[start:end], &d); err != nil {
				return err
			}
			start = end
			if err := fn(d); err != nil {
				return err
			}
		}
		return nil
	})
}

// detailEncoder encodes a session as the JSON of its decoded report.Detail.
type detailEncoder struct{}

func (detailEncoder) Append(dst []byte, sd *report.StoredDetail) ([]byte, error) {
	d, err := sd.Decode()
	if err != nil {
		return dst, err
	}
	line, err := json.Marshal(d)
	if err != nil {
		return dst, err
	}
	return append(dst, line...), nil
}
