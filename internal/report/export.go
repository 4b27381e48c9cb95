package report

import (
	"encoding/json"
	"fmt"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
)

// StoredDetail is a session with its events as the store keeps them: each
// event the JSON of an event.Event (encoding/json's encoding of an event the
// event decoder returned), in event order. Members that are not the event's,
// such as an Elasticsearch document's own, are ignored. An export hands
// these to its Encoder undecoded, so that the JSON lines export can copy
// most of their bytes instead of decoding and encoding every event again.
type StoredDetail struct {
	Session session.Session
	Events  [][]byte
}

// Decode decodes d's events.
func (d *StoredDetail) Decode() (Detail, error) {
	out := Detail{Session: d.Session, Events: make([]event.Event, len(d.Events))}
	for i, body := range d.Events {
		var err error
		if out.Events[i], err = DecodeEvent(body); err != nil {
			return out, err
		}
	}
	return out, nil
}

// DecodeEvent decodes a stored event with the event decoder (a third of
// encoding/json's cost, docs/performance.md): every stored event passed it
// once. One that the contract of today rejects (stored under an older one)
// is read with encoding/json, as it was written.
func DecodeEvent(body []byte) (event.Event, error) {
	if e, err := event.Decode(body); err == nil {
		return e, nil
	}
	var e event.Event
	if err := json.Unmarshal(body, &e); err != nil {
		return e, fmt.Errorf("decode event: %w", err)
	}
	return e, nil
}

// Encoder appends the sessions of an export to a buffer in one format.
type Encoder interface {
	// Append appends d to dst; it keeps neither d nor its events.
	Append(dst []byte, d *StoredDetail) ([]byte, error)
}

// Emit receives an export's sessions, encoded: chunk holds whole sessions,
// the i-th ending at ends[i]. Both are only valid during the call.
type Emit func(chunk []byte, ends []int) error
