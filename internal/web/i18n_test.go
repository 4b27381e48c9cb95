package web_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestErrorCodesTranslated: the screen words every error code the API
// documents, in each of its languages, so no English message of the API
// reaches a Portuguese screen.
func TestErrorCodesTranslated(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum []string `json:"enum"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	b, err := os.ReadFile("../api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	dict, err := os.ReadFile("static/i18n.js")
	if err != nil {
		t.Fatal(err)
	}
	// The dictionary has two languages; each key appears once in each.
	want := map[string][]string{
		"perr.":    doc.Components.Schemas["ParamError"].Properties["code"].Enum,
		"problem.": doc.Components.Schemas["Problem"].Properties["code"].Enum,
	}
	// Said otherwise: a 400's parameters, a 404 as "no such session", and
	// the fallback for a status without a code.
	handled := map[string]bool{"problem.invalid_parameters": true, "problem.not_found": true, "problem.error": true}
	if len(want["perr."]) < 20 || len(want["problem."]) < 5 {
		t.Fatalf("the OpenAPI document lists codes %v", want)
	}
	for prefix, codes := range want {
		for _, c := range codes {
			key := prefix + c
			if handled[key] {
				continue
			}
			if n := strings.Count(string(dict), "'"+key+"':"); n != 2 {
				t.Errorf("i18n.js has %q %d times, want once per language", key, n)
			}
		}
	}
}

// TestFullTextHintSaysOneMessage: the hint under the text field says what
// the API matches — every word in one message (docs/api.md, "Full text") —
// in each language; "conversations with every word" read as words spread
// over a conversation, which find nothing.
func TestFullTextHintSaysOneMessage(t *testing.T) {
	dict, err := os.ReadFile("static/i18n.js")
	if err != nil {
		t.Fatal(err)
	}
	var hints []string
	for _, line := range strings.Split(string(dict), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "'filter.qHint':") {
			hints = append(hints, line)
		}
	}
	if len(hints) != 2 {
		t.Fatalf("%d full-text hints, want one per language: %q", len(hints), hints)
	}
	for i, want := range []string{"uma mensagem", "one message"} {
		if !strings.Contains(hints[i], want) {
			t.Errorf("full-text hint %q does not say %q", hints[i], want)
		}
	}
}
