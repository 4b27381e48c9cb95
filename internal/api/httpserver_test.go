package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// serveRaw serves the API as the serve command does (NewHTTPServer on a
// ProblemListener) on a loopback port, and returns its address.
func serveRaw(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(newServer(t, testConfig(t), &fakeStore{}))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ProblemListener(ln)) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	})
	return ln.Addr().String()
}

// rawRequest sends raw bytes as a request and reads the answer.
func rawRequest(t *testing.T, addr, raw string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// The server may answer and close before it read everything.
	go func() { _, _ = c.Write([]byte(raw)) }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%.80q: %v", raw, err)
	}
	defer resp.Body.Close()
	var body []byte
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		body = append(body, buf[:n]...)
		if err != nil {
			break
		}
	}
	return resp, body
}

// TestMalformedHTTP: what Go's server refuses before any handler runs is a
// 4xx problem document too (it was plain text, and an unsupported transfer
// coding or HTTP version a 5xx).
func TestMalformedHTTP(t *testing.T) {
	addr := serveRaw(t)
	auth := "Authorization: Bearer " + acmeKey + "\r\n"
	huge := strings.Repeat("a", MaxHeaderBytes+8<<10)
	for _, tt := range []struct {
		name, raw string
		status    int
		detail    string
	}{
		{"target over the limit", "GET /api/v1/sessions?q=" + huge + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 431, "at most 512 KiB"},
		{"header over the limit", "GET /api/v1/sessions HTTP/1.1\r\nHost: x\r\nX-Big: " + huge + "\r\n" + auth + "\r\n", 431, "at most 512 KiB"},
		{"NUL in the target", "GET /api/v1/sessions?q=a\x00b HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 400, "not valid HTTP/1.1"},
		{"space in the target", "GET /api/v1/sessions?q=a b HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 400, ""},
		{"NUL in Authorization", "GET /api/v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\x00b\r\n\r\n", 400, "not valid HTTP/1.1"},
		{"bad escape in the path", "GET /api/v1/sessions/% HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 400, "not valid HTTP/1.1"},
		{"no Host", "GET /api/v1/sessions HTTP/1.1\r\n" + auth + "\r\n", 400, "missing required Host header"},
		{"two Hosts", "GET /api/v1/sessions HTTP/1.1\r\nHost: x\r\nHost: y\r\n" + auth + "\r\n", 400, ""},
		{"bad header name", "GET /api/v1/sessions HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n" + auth + "\r\n", 400, ""},
		{"unknown transfer coding", "POST /api/v1/sessions/search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n" + auth + "\r\n", 400, "transfer encoding"},
		{"unknown HTTP version", "GET /api/v1/sessions HTTP/3.7\r\nHost: x\r\n" + auth + "\r\n", 400, ""},
		{"an expectation", "GET /api/v1/sessions HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n" + auth + "\r\n", 417, "100-continue"},
		{"bad Content-Length", "POST /api/v1/sessions/search HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n" + auth + "\r\n", 400, ""},
		{"two Content-Lengths", "POST /api/v1/sessions/search HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n" + auth + "\r\n", 400, ""},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 404, "No such route"}, // reaches the API
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := rawRequest(t, addr, tt.raw)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			var p problemBody
			if err := json.Unmarshal(body, &p); err != nil || p.Status != tt.status || p.Type != "about:blank" || p.Title != http.StatusText(tt.status) {
				t.Fatalf("problem %+v (%v): %s", p, err, body)
			}
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q, want it to say %q", p.Detail, tt.detail)
			}
		})
	}
}

// TestLargestValidGET: a GET with every filter parameter at its largest,
// every byte percent-encoded, is within MaxHeaderBytes and reaches the API.
func TestLargestValidGET(t *testing.T) {
	addr := serveRaw(t)
	q := url.Values{}
	for range maxTags {
		q.Add("tag", strings.Repeat("é", maxTagLen/2))
	}
	for range maxConditions {
		q.Add("info", strings.Repeat("K", 128)+":contains:"+strings.Repeat("é", maxValueLen/2))
	}
	for range maxChannels {
		q.Add("channel", strings.Repeat("w", 32))
	}
	q.Set("contact", strings.Repeat("é", maxContactLen/2))
	q.Set("q", strings.Repeat("é", maxQueryLen/2))
	q.Set("from", "2025-10-01")
	q.Set("to", "2025-10-31")
	target := "/api/v1/export?" + strings.ReplaceAll(q.Encode(), "%C3%A9", "%c3%a9")
	if len(target) < 250<<10 || len(target) > MaxHeaderBytes-8<<10 {
		t.Fatalf("target of %d bytes", len(target))
	}
	resp, body := rawRequest(t, addr, "GET "+target+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+acmeKey+"\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d: %.300s", resp.StatusCode, body)
	}
}

// serverAnswer recognises net/http's own answers only: a handler's
// response, which always has a Date, is never rewritten.
func TestServerAnswerShape(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		want int
	}{
		{"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request", 400},
		{"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large", 431},
		{"HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\nContent-Length: 0\r\nDate: Mon, 20 Oct 2025 12:00:00 GMT\r\n\r\n", 417},
		{"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Mon, 20 Oct 2025 12:00:00 GMT\r\n\r\nx", 0},
		{"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nok", 0},
		{"HTTP/1.1 400 Bad Request\r\nContent-Type: application/problem+json\r\nDate: Mon, 20 Oct 2025 12:00:00 GMT\r\n\r\n{}", 0},
		{"ok", 0},
	} {
		status, _, ok := serverAnswer([]byte(tt.raw))
		if ok != (tt.want != 0) || status != tt.want {
			t.Errorf("%.40q: %d %v, want %d", tt.raw, status, ok, tt.want)
		}
	}
}
