package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/chatreport/chatreport/internal/report"
)

// ExportDetails runs s's Export and calls fn with every session it exports,
// decoded, in order: the suite checks what is exported, whatever the
// format. It stops at fn's first error.
func ExportDetails(ctx context.Context, s Store, f report.Filter, fn func(report.Detail) error) error {
	return s.Export(ctx, f, func() report.Encoder { return detailEncoder{} }, func(chunk []byte, n int) error {
		lines := bytes.Split(bytes.TrimSuffix(chunk, []byte{'\n'}), []byte{'\n'})
		if len(lines) != n {
			return fmt.Errorf("export: a chunk of %d sessions holds %d", n, len(lines))
		}
		for _, line := range lines {
			var d report.Detail
			if err := json.Unmarshal(line, &d); err != nil {
				return err
			}
			if err := fn(d); err != nil {
				return err
			}
		}
		return nil
	})
}

// detailEncoder encodes a session as the JSON of its decoded report.Detail,
// one a line.
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
	return append(append(dst, line...), '\n'), nil
}
