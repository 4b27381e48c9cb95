package config

import "encoding/json"

// Secret is a credential. Printed (fmt, zap), or marshalled to YAML or JSON,
// it shows as "[redacted]" (empty when unset), so no dump of a
// configuration reveals it; string(s) is its value. A field of the
// configuration that holds a credential must be a Secret: a test checks the
// names of every field.
type Secret string

const redacted = "[redacted]"

func (s Secret) shown() string {
	if s == "" {
		return ""
	}
	return redacted
}

// String is "[redacted]", or "" when unset.
func (s Secret) String() string { return s.shown() }

// GoString is String quoted, for %#v.
func (s Secret) GoString() string { return `"` + s.shown() + `"` }

// MarshalYAML writes String.
func (s Secret) MarshalYAML() (any, error) { return s.shown(), nil }

// MarshalJSON writes String.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.shown()) }
