package elastic

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/typedapi/types"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

var (
	from = time.Date(2025, 10, 1, 3, 0, 0, 0, time.UTC)
	to   = time.Date(2025, 11, 1, 3, 0, 0, 0, time.UTC)
)

// TestQueryGolden pins the request body of every filter translation:
// testdata/query/<name>.json, rewritten by go test -update.
func TestQueryGolden(t *testing.T) {
	yes, no := true, false
	info := func(op report.Op, value string) []report.Condition {
		return []report.Condition{{Key: "PLANO", Op: op, Value: value}}
	}
	tests := []struct {
		name string
		f    report.Filter
		page report.Page
	}{
		{"interval", report.Filter{}, report.Page{Limit: 50}},
		{"next_page", report.Filter{}, report.Page{Limit: 50, After: &report.Cursor{
			StartedAt: time.Date(2025, 10, 7, 9, 26, 33, 646000123, time.UTC), SessionID: "c639c747-4637-4ff5-99c0-9f0e86d3c21b"}}},
		{"session", report.Filter{SessionID: "C639C747-4637-4FF5-99C0-9F0E86D3C21B"}, report.Page{}},
		{"protocol", report.Filter{Protocol: "20251007092633646"}, report.Page{}},
		{"tags_any", report.Filter{Tags: []string{"Segunda Via Sucesso", "Negociação", "Negociação"}}, report.Page{}},
		{"tags_all", report.Filter{Tags: []string{"Segunda Via Sucesso", "Negociação", "Negociação"}, TagMode: report.TagsAll}, report.Page{}},
		{"info_equals", report.Filter{Info: info(report.OpEquals, "Fibra 500 MEGA")}, report.Page{}},
		{"info_not_equals", report.Filter{Info: info(report.OpNotEquals, "Fibra 500 MEGA")}, report.Page{}},
		{"info_contains", report.Filter{Info: info(report.OpContains, "São *?\\")}, report.Page{}},
		{"info_not_contains", report.Filter{Info: info(report.OpNotContain, "500")}, report.Page{}},
		{"info_starts_with", report.Filter{Info: info(report.OpStartsWith, "FIBRA")}, report.Page{}},
		{"info_exists", report.Filter{Info: info(report.OpExists, "")}, report.Page{}},
		{"info_not_exists", report.Filter{Info: info(report.OpNotExists, "")}, report.Page{}},
		{"info_three_conditions", report.Filter{Info: []report.Condition{
			{Key: "NAO_TRANSBORDADA", Op: report.OpEquals, Value: "true"},
			{Key: "CIDADE", Op: report.OpStartsWith, Value: "São"},
			{Key: "PLANO", Op: report.OpNotExists}}}, report.Page{}},
		{"channels", report.Filter{Channels: []string{"webchat", "telegram", "webchat"}}, report.Page{}},
		{"contact_id_or_name", report.Filter{Contact: "Maria*"}, report.Page{}},
		{"contact_phone", report.Filter{Contact: "+55 (11) 98765-4321"}, report.Page{}},
		{"contact_phone_8_digits", report.Filter{Contact: "8765-4321"}, report.Page{}},
		{"handed_off", report.Filter{HandedOff: &yes}, report.Page{}},
		{"not_handed_off", report.Filter{HandedOff: &no}, report.Page{}},
		{"full_text", report.Filter{Query: "NÃO consigo segunda-via ?!"}, report.Page{}},
		{"combined", report.Filter{
			SessionID: "c639c747-4637-4ff5-99c0-9f0e86d3c21b", Protocol: "20251007092633646",
			Tags: []string{"Segunda Via Sucesso"}, TagMode: report.TagsAll,
			Info:     []report.Condition{{Key: "PLANO", Op: report.OpContains, Value: "fibra"}, {Key: "NPS", Op: report.OpNotEquals, Value: "0"}},
			Channels: []string{"whatsapp"}, Contact: "11 98765-4321", HandedOff: &yes, Query: "boleto",
		}, report.Page{Limit: 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.Tenant, f.From, f.To = "acme", from, to
			if err := f.Validate(); err != nil {
				t.Fatal(err)
			}
			if tc.page.Limit == 0 {
				tc.page.Limit = 10
			}
			body, err := json.Marshal(searchRequest(&f, tc.page))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "query/"+tc.name+".json", body)
		})
	}
}

// TestReadRequestsGolden pins the other requests of the read side.
func TestReadRequestsGolden(t *testing.T) {
	f := report.Filter{Tenant: "acme", From: from, To: to}
	for name, req := range map[string]any{
		"events_of_sessions": eventsRequest("acme", []string{"s1", "s2"}, from),
		"facets":             facetsRequest(&f, nil, true),
		"facets_next":        facetsRequest(&f, map[string]types.CompositeAggregateKey{"tags": {"v": "Menu"}}, false),
	} {
		body, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "query/"+name+".json", body)
	}
}

func TestEscapeWildcard(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain",
		"a*b?c": `a\*b\?c`,
		`back\`: `back\\`,
		"são*":  `são\*`,
		"":      "",
		`\*?`:   `\\\*\?`,
		"文字*文字": `文字\*文字`,
	} {
		if got := escapeWildcard(in); got != want {
			t.Errorf("escapeWildcard(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSessionDoc(t *testing.T) {
	s := session.Session{
		Tenant: "acme", ID: "sid", Contact: contactFixture(),
		Info: map[string]string{"PLANO": "Fibra 500 MEGA", "CIDADE": "SÃO Paulo"},
	}
	d := newSessionDoc(&s, nil)
	if d.ContactName != "maria souza" || d.ContactPhoneRev != "1234567891155" {
		t.Errorf("contact fields: %q %q", d.ContactName, d.ContactPhoneRev)
	}
	if got, want := d.InfoKV, []string{"CIDADE=são paulo", "PLANO=fibra 500 mega"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("info_kv %q, want %q", got, want)
	}
	if d.InfoKeys[0] != "CIDADE" {
		t.Errorf("info_keys %v", d.InfoKeys)
	}
	if raw := d.appendJSON(nil); !bytes.Contains(raw, []byte(`"messages":[],"event_refs":[]}`)) {
		t.Errorf("a session without messages must have an empty list of them: %s", raw)
	}
}

func contactFixture() event.Contact {
	return event.Contact{ID: "5511987654321", Phone: "+55 11 98765-4321", Name: "Maria Souza"}
}
