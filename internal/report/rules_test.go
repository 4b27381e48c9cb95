package report

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/chatreport/chatreport/internal/event"
)

// TestPatterns: the patterns the screen checks values with accept exactly
// what the rules accept.
func TestPatterns(t *testing.T) {
	check := func(name, pattern string, valid func(string) bool, values []string) {
		t.Helper()
		re := regexp.MustCompile(pattern)
		for _, v := range values {
			if re.MatchString(v) != valid(v) {
				t.Errorf("%s: pattern says %v for %q, the rule %v", name, re.MatchString(v), v, valid(v))
			}
		}
	}
	// Every YYYYMMDD of four centuries and then some, days 00 to 32 of
	// months 00 to 13, and dates of years 0 and 9999.
	var protocols []string
	for _, y := range append(intRange(1595, 2405), 0, 4, 100, 400, 9996, 9999) {
		for m := 0; m <= 13; m++ {
			for d := 0; d <= 32; d++ {
				protocols = append(protocols, fmt.Sprintf("%04d%02d%02d092633646", y, m, d))
			}
		}
	}
	protocols = append(protocols, "", "2025100709263364", "202510070926336461", "2025100709263364a", "20251007 92633646", "２0251007092633646")
	check("protocol", ProtocolPattern, event.IsProtocol, protocols)

	ids := []string{validID, strings.ToUpper(validID), "", "c639c747-4637-4ff5-99c0-9f0e86d3c21", "c639c747-4637-4ff5-99c0-9f0e86d3c21bb",
		"c639c747_4637-4ff5-99c0-9f0e86d3c21b", "g639c747-4637-4ff5-99c0-9f0e86d3c21b", "c639c7474-637-4ff5-99c0-9f0e86d3c21b"}
	check("session", SessionIDPattern, event.IsUUID, ids)

	keys := []string{"NAO_TRANSBORDADA", "a.b-c", "-", "", "a b", "é", "a:b", strings.Repeat("k", MaxInfoKeyLen), strings.Repeat("k", MaxInfoKeyLen+1)}
	check("info key", InfoKeyPattern, event.IsInfoKey, keys)

	channels := []string{"whatsapp", "web-chat", "web_chat", "9x", "-x", "_x", "", "WhatsApp", "a.b", strings.Repeat("c", MaxChannelLen), strings.Repeat("c", MaxChannelLen+1)}
	check("channel", ChannelPattern, func(s string) bool { return event.IsToken(s, MaxChannelLen, false) }, channels)
}

func intRange(from, to int) []int {
	out := make([]int, 0, to-from+1)
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}
