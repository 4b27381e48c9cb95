package api

import (
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// TestFilterRules: the route serves report's rules, as openapi.json's
// example and docs/api.md show them, to credentials only.
func TestFilterRules(t *testing.T) {
	s := newServer(t, testConfig(t), &fakeStore{})
	var got map[string]any
	w := getJSON(t, s, "/api/v1/filter/rules", acmeKey, &got)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	served := map[string]any{
		"max_interval_days": float64(report.MaxIntervalDays),
		"limits": map[string]any{
			"tags": float64(report.MaxTags), "tag_bytes": float64(report.MaxTagBytes), "channels": float64(report.MaxChannels),
			"conditions": float64(report.MaxConditions), "value_bytes": float64(report.MaxValueBytes),
			"contact_bytes": float64(report.MaxContactBytes), "q_bytes": float64(report.MaxQueryBytes),
			"names": float64(report.MaxNames), "name_bytes": float64(report.MaxNameBytes),
			"page": float64(report.MaxPageLimit), "default_page": float64(report.DefaultPageLimit),
		},
		"patterns": map[string]any{
			"session": report.SessionIDPattern, "protocol": report.ProtocolPattern,
			"info_key": report.InfoKeyPattern, "channel": report.ChannelPattern,
		},
	}
	var ops []any
	for _, op := range report.Ops {
		ops = append(ops, map[string]any{"op": string(op), "takes_value": op.TakesValue()})
	}
	served["operations"] = ops
	var outcomes []any
	for _, o := range session.Outcomes {
		outcomes = append(outcomes, o)
	}
	served["outcomes"] = outcomes
	if !reflect.DeepEqual(got, served) {
		t.Fatalf("served\n%v\nwant report's rules\n%v", got, served)
	}

	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]struct {
					Example any `json:"example"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	if ex := doc.Paths["/api/v1/filter/rules"]["get"].Responses["200"].Content["application/json"].Example; !reflect.DeepEqual(ex, any(got)) {
		t.Errorf("openapi.json's example\n%v\nis not what the route serves\n%v", ex, got)
	}
	md, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(md), "\n## Filter rules\n")
	_, block, _ := strings.Cut(section, "```json\n")
	block, _, _ = strings.Cut(block, "```")
	var documented map[string]any
	if err := json.Unmarshal([]byte(block), &documented); err != nil || !reflect.DeepEqual(documented, got) {
		t.Errorf("docs/api.md's Filter rules example (%v) is not what the route serves", err)
	}

	if w := do(s, http.MethodGet, "/api/v1/filter/rules", "", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("without credentials: %d", w.Code)
	}
	if w := do(s, http.MethodGet, "/api/v1/filter/rules?tag=a", acmeKey, ""); w.Code != http.StatusBadRequest {
		t.Errorf("with a parameter: %d", w.Code)
	} else if got := errorParams(t, w, w.Body.Bytes()); !slices.Equal(got, []string{"tag"}) {
		t.Errorf("with a parameter: errors name %q", got)
	}
}

// TestOpenAPIRules: the schemas of the rules have the fields the route
// renders, and the limits and patterns openapi.json gives the filter's
// parameters and body fields are report's.
func TestOpenAPIRules(t *testing.T) {
	doc := loadOpenAPI(t)
	for schema, value := range map[string]any{
		"FilterRules": filterRules, "FilterLimits": filterRules.Limits,
		"FilterOperation": filterRules.Operations[0], "FilterPatterns": filterRules.Patterns,
	} {
		b, _ := json.Marshal(value)
		var fields map[string]json.RawMessage
		json.Unmarshal(b, &fields) //nolint:errcheck // marshalled just above
		if got := doc.properties(t, schema); !slices.Equal(got, sortedKeys(fields)) {
			t.Errorf("%s documents %v, renders %v", schema, got, sortedKeys(fields))
		}
	}

	type schema struct {
		Pattern   string          `json:"pattern"`
		MaxLength int             `json:"maxLength"`
		MaxItems  int             `json:"maxItems"`
		Maximum   int             `json:"maximum"`
		Default   json.RawMessage `json:"default"`
		Enum      []string        `json:"enum"`
		Items     *schema         `json:"items"`
	}
	read := func(raw json.RawMessage) map[string]schema {
		var s struct {
			Properties map[string]schema `json:"properties"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		return s.Properties
	}
	var raw struct {
		Components struct {
			Schemas    map[string]json.RawMessage `json:"schemas"`
			Parameters map[string]struct {
				Schema schema `json:"schema"`
			} `json:"parameters"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDocument, &raw); err != nil {
		t.Fatal(err)
	}
	body := read(raw.Components.Schemas["SearchRequest"])
	cond := read(raw.Components.Schemas["InfoCondition"])
	param := func(name string) schema { return raw.Components.Parameters[name].Schema }
	var ops []string
	for _, op := range report.Ops {
		ops = append(ops, string(op))
	}
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"body protocol pattern", body["protocol"].Pattern, report.ProtocolPattern},
		{"parameter protocol pattern", param("Protocol").Pattern, report.ProtocolPattern},
		{"body tags", body["tags"].MaxItems, report.MaxTags},
		{"body tag length", body["tags"].Items.MaxLength, report.MaxTagBytes},
		{"parameter tag", param("Tag").MaxItems, report.MaxTags},
		{"body info", body["info"].MaxItems, report.MaxConditions},
		{"parameter info", param("Info").MaxItems, report.MaxConditions},
		{"body channels", body["channels"].MaxItems, report.MaxChannels},
		{"body channel pattern", body["channels"].Items.Pattern, report.ChannelPattern},
		{"parameter channel", param("Channel").MaxItems, report.MaxChannels},
		{"parameter channel pattern", param("Channel").Items.Pattern, report.ChannelPattern},
		{"body contact", body["contact"].MaxLength, report.MaxContactBytes},
		{"parameter contact", param("Contact").MaxLength, report.MaxContactBytes},
		{"body q", body["q"].MaxLength, report.MaxQueryBytes},
		{"parameter q", param("Q").MaxLength, report.MaxQueryBytes},
		{"body limit", body["limit"].Maximum, report.MaxPageLimit},
		{"parameter limit", param("Limit").Maximum, report.MaxPageLimit},
		{"body limit default", string(body["limit"].Default), strconv.Itoa(report.DefaultPageLimit)},
		{"parameter limit default", string(param("Limit").Default), strconv.Itoa(report.DefaultPageLimit)},
		{"info key pattern", cond["key"].Pattern, report.InfoKeyPattern},
		{"info operations", cond["op"].Enum, ops},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("openapi.json's %s is %v, report's %v", c.what, c.got, c.want)
		}
	}
}
