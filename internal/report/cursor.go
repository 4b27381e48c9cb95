package report

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Cursor is the position after the last session of a page, in the report's
// order: started_at descending, then session_id descending.
type Cursor struct {
	StartedAt time.Time `json:"t"`
	SessionID string    `json:"s"`
}

// ErrBadCursor is returned for a cursor that was not issued by this service.
var ErrBadCursor = errors.New("invalid cursor")

// CursorCodec makes cursors opaque and tamper-evident: the position is signed
// with a key shared by every API instance.
type CursorCodec struct {
	key []byte
}

// NewCursorCodec returns a codec signing with key.
func NewCursorCodec(key []byte) *CursorCodec { return &CursorCodec{key: key} }

// Strict: a cursor has one spelling; non-canonical trailing bits are tampering.
var b64 = base64.RawURLEncoding.Strict()

// Encode returns the opaque form of c.
func (k *CursorCodec) Encode(c Cursor) string {
	payload, _ := json.Marshal(c) // a struct of a time and a string always marshals
	return b64.EncodeToString(payload) + "." + b64.EncodeToString(k.sign(payload))
}

// Decode parses a cursor made by Encode with the same key.
func (k *CursorCodec) Decode(s string) (Cursor, error) {
	p, sig, ok := strings.Cut(s, ".")
	if !ok {
		return Cursor{}, ErrBadCursor
	}
	payload, err1 := b64.DecodeString(p)
	mac, err2 := b64.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, k.sign(payload)) {
		return Cursor{}, ErrBadCursor
	}
	var c Cursor
	if err := json.Unmarshal(payload, &c); err != nil || c.SessionID == "" {
		return Cursor{}, ErrBadCursor
	}
	return c, nil
}

func (k *CursorCodec) sign(payload []byte) []byte {
	m := hmac.New(sha256.New, k.key)
	m.Write(payload)
	return m.Sum(nil)[:16]
}
