package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
)

// ExportFilter is a filter of every session of acme the export fixtures
// write.
var ExportFilter = report.Filter{Tenant: "acme", From: Base.Add(-24 * time.Hour), To: Base.Add(29 * 24 * time.Hour)}

// ManyContact is the contact of the k-th session of ManySessions.
func ManyContact(k int) B {
	return B{Contact: fmt.Sprintf("55119%08d", k)}
}

// ManySessions are n sessions of acme of one message each: session k of
// ManyContact(k), k minutes after Base, so that an export (newest first)
// reads the first ones last.
func ManySessions(n int) []event.Event {
	events := make([]event.Event, n)
	for k := range n {
		events[k] = ManyContact(k).Msg(fmt.Sprintf("m%d", k), time.Duration(k)*time.Minute, event.RoleCustomer, "oi")
	}
	return events
}

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
