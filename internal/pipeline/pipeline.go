// Package pipeline reads the pipeline definition: the topics to consume, the
// dead-letter topic, the consumer group and the per-channel session policy.
package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/pipelines"
)

// Mode is how a channel's derived sessions end.
type Mode string

// Session modes.
const (
	// Fixed windows last Duration from the event that opens them.
	Fixed Mode = "fixed"
	// Sliding windows end Duration after the latest customer message.
	Sliding Mode = "sliding"
)

// Policy is how a channel groups a contact's events into sessions.
type Policy struct {
	Mode     Mode          `yaml:"mode"`
	Duration time.Duration `yaml:"duration"`
}

// Validate reports a policy that cannot be applied.
func (p Policy) Validate() error {
	if p.Mode != Fixed && p.Mode != Sliding {
		return fmt.Errorf("mode %q: must be fixed or sliding", p.Mode)
	}
	if p.Duration <= 0 {
		return fmt.Errorf("duration %s: must be positive", p.Duration)
	}
	return nil
}

// Topics names the Kafka topics of the pipeline.
type Topics struct {
	Events     []string `yaml:"events"`
	DeadLetter string   `yaml:"dead_letter"`
	Partitions int      `yaml:"partitions"`
}

// All returns the event topics and the dead-letter topic.
func (t Topics) All() []string {
	return append(append([]string(nil), t.Events...), t.DeadLetter)
}

// Sessions holds the session policies.
type Sessions struct {
	Default  Policy            `yaml:"default"`
	Channels map[string]Policy `yaml:"channels"`
}

// Definition is a whole pipeline definition.
type Definition struct {
	Topics        Topics   `yaml:"topics"`
	ConsumerGroup string   `yaml:"consumer_group"`
	Sessions      Sessions `yaml:"sessions"`
}

// PolicyFor returns the session policy of a channel.
func (d *Definition) PolicyFor(channel string) Policy {
	if p, ok := d.Sessions.Channels[channel]; ok {
		return p
	}
	return d.Sessions.Default
}

// Validate reports every problem of the definition at once.
func (d *Definition) Validate() error {
	var errs []error
	if len(d.Topics.Events) == 0 {
		errs = append(errs, errors.New("topics.events: at least one topic"))
	}
	seen := map[string]bool{}
	for _, t := range d.Topics.All() {
		if t == "" {
			errs = append(errs, errors.New("topics: empty topic name"))
		}
		if seen[t] {
			errs = append(errs, fmt.Errorf("topics: %q listed twice", t))
		}
		seen[t] = true
	}
	if d.Topics.Partitions < 1 {
		errs = append(errs, errors.New("topics.partitions: at least 1"))
	}
	if d.ConsumerGroup == "" {
		errs = append(errs, errors.New("consumer_group: required"))
	}
	if err := d.Sessions.Default.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("sessions.default: %w", err))
	}
	for ch, p := range d.Sessions.Channels {
		if !event.IsToken(ch, 32, false) {
			errs = append(errs, fmt.Errorf("sessions.channels: %q is not a channel token", ch))
		}
		if err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("sessions.channels.%s: %w", ch, err))
		}
	}
	return errors.Join(errs...)
}

// Parse reads a definition; unknown keys are errors.
func Parse(data []byte) (*Definition, error) {
	var d Definition
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("pipeline definition: %w", err)
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("pipeline definition: %w", err)
	}
	return &d, nil
}

// Load reads the definition at path, or the embedded default when path is "".
func Load(path string) (*Definition, error) {
	var (
		data []byte
		err  error
	)
	if path == "" {
		data, err = fs.ReadFile(pipelines.FS, pipelines.Default)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline definition: %w", err)
	}
	return Parse(data)
}

// MustDefault returns the embedded default definition; it panics only if the
// binary was built with a broken one, which the tests rule out.
func MustDefault() *Definition {
	d, err := Load("")
	if err != nil {
		panic(err)
	}
	return d
}
