package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Limits of a request's head, which Go's HTTP server enforces before any
// handler runs (docs/api.md, Limits).
const (
	// MaxHeaderBytes bounds the request line and the headers together.
	// The largest valid filter as GET parameters (20 info values of 4,096
	// bytes and 50 tags of 128, every byte percent-encoded) is about
	// 270 KiB. net/http reads up to 4 KiB past it before refusing.
	MaxHeaderBytes = 512 << 10
	// ReadHeaderTimeout bounds how long a client may take to send them.
	ReadHeaderTimeout = 10 * time.Second
)

// NewHTTPServer returns the server for h with the limits above. Serve it on
// a ProblemListener so that the answers Go's server gives itself are
// problem documents too.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, MaxHeaderBytes: MaxHeaderBytes, ReadHeaderTimeout: ReadHeaderTimeout}
}

// ProblemListener wraps ln so that the answers net/http writes on its own,
// in plain text, before any handler runs — a request head over
// MaxHeaderBytes (431), a malformed request line, target, header or Host
// (400), an unsupported transfer coding or HTTP version (501 and 505 in
// net/http), an Expect other than 100-continue (417) — are RFC 9457 problem
// documents like every other error of the API. Bad input is a 4xx: the 501
// and 505 become 400s.
//
// net/http writes each of those answers whole, in one write, in a shape no
// handler's response has (a Content-Type line right after the status line
// and no Date), and closes the connection after it; that shape is what is
// rewritten, and nothing else.
func ProblemListener(ln net.Listener) net.Listener { return problemListener{ln} }

type problemListener struct{ net.Listener }

func (l problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return problemConn{c}, nil
}

type problemConn struct{ net.Conn }

func (c problemConn) Write(b []byte) (int, error) {
	status, detail, ok := serverAnswer(b)
	if !ok {
		return c.Conn.Write(b)
	}
	if _, err := c.Conn.Write(problemResponse(status, detail)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// CloseWrite keeps net/http's lingering close (it half-closes a TCP
// connection after a 431 so that the client reads the answer).
func (c problemConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// The shape of net/http's own plain-text answers.
const (
	plainHead     = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	expectFailure = "HTTP/1.1 417 Expectation Failed\r\n"
)

// serverAnswer reports whether b is an answer net/http wrote on its own, and
// its status and what it said.
func serverAnswer(b []byte) (status int, said string, ok bool) {
	if bytes.HasPrefix(b, []byte(expectFailure)) && bytes.Contains(b, []byte("\r\nContent-Length: 0\r\n")) &&
		bytes.HasSuffix(b, []byte("\r\n\r\n")) {
		return http.StatusExpectationFailed, "", true
	}
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 ")) || len(b) < len("HTTP/1.1 400") {
		return 0, "", false
	}
	line, rest, found := bytes.Cut(b, []byte("\r\n"))
	if !found || !bytes.HasPrefix(rest, []byte(plainHead[2:])) {
		return 0, "", false
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil || status < 400 || status > 599 {
		return 0, "", false
	}
	return status, string(rest[len(plainHead)-2:]), true
}

// problemResponse is the problem document for one of net/http's own answers.
func problemResponse(status int, said string) []byte {
	detail := ""
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		detail = fmt.Sprintf("The request line and headers may have at most %d KiB together; send a large filter as the body of POST /api/v1/sessions/search.", MaxHeaderBytes>>10)
	case http.StatusNotImplemented:
		status = http.StatusBadRequest
		detail = "Unsupported transfer encoding: send the body with Content-Length or chunked."
	case http.StatusHTTPVersionNotSupported:
		status = http.StatusBadRequest
		detail = "Unsupported HTTP version: use HTTP/1.1."
	case http.StatusExpectationFailed:
		detail = "The only expectation served is Expect: 100-continue."
	default:
		detail = "The request is not valid HTTP/1.1: a malformed request line, target (a % must start an escape %XX; no spaces or control characters), header or Host."
		// net/http's own words after the status ("missing required Host
		// header", "invalid header name") say which; never the input.
		prefix := strconv.Itoa(status) + " " + http.StatusText(status) + ": "
		if len(said) > len(prefix) && said[:len(prefix)] == prefix {
			detail = "The request is not valid HTTP/1.1: " + said[len(prefix):] + "."
		}
	}
	code := problemCode(status)
	if status == http.StatusBadRequest {
		code = CodeMalformedRequest
	}
	body, _ := json.Marshal(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "code": code, "detail": detail})
	body = append(body, '\n')
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}
