package api

import (
	"fmt"
	"net/http"
)

// ErrorCode names a kind of error in a stable, language-neutral way, so
// that a client (the report screen among them) can show the error in its
// operator's language; the message beside it is English and may be reworded.
// Codes are only ever added, never renamed.
type ErrorCode string

// The codes of a problem document's "code": one per status.
const (
	CodeInvalidParameters    ErrorCode = "invalid_parameters"
	CodeUnauthorized         ErrorCode = "unauthorized"
	CodeNotFound             ErrorCode = "not_found"
	CodeMethodNotAllowed     ErrorCode = "method_not_allowed"
	CodeTooLarge             ErrorCode = "too_large"
	CodeUnsupportedMediaType ErrorCode = "unsupported_media_type"
	CodeMalformedRequest     ErrorCode = "malformed_request" // malformed HTTP, refused before the API
	CodeExpectationFailed    ErrorCode = "expectation_failed"
	CodeHeadersTooLarge      ErrorCode = "headers_too_large"
	CodeInternal             ErrorCode = "internal"
	CodeUnavailable          ErrorCode = "unavailable"
	CodeError                ErrorCode = "error" // any other status
)

// problemCodes are the codes of the statuses the API answers with.
var problemCodes = map[int]ErrorCode{
	http.StatusBadRequest:                  CodeInvalidParameters,
	http.StatusUnauthorized:                CodeUnauthorized,
	http.StatusNotFound:                    CodeNotFound,
	http.StatusMethodNotAllowed:            CodeMethodNotAllowed,
	http.StatusRequestEntityTooLarge:       CodeTooLarge,
	http.StatusUnsupportedMediaType:        CodeUnsupportedMediaType,
	http.StatusExpectationFailed:           CodeExpectationFailed,
	http.StatusRequestHeaderFieldsTooLarge: CodeHeadersTooLarge,
	http.StatusInternalServerError:         CodeInternal,
	http.StatusServiceUnavailable:          CodeUnavailable,
}

func problemCode(status int) ErrorCode {
	if c, ok := problemCodes[status]; ok {
		return c
	}
	return CodeError
}

// The codes of one invalid parameter ("errors"[].code): those of reading a
// request; those of the filter's rules are report's (report.Code*).
const (
	CodeUnknownParameter ErrorCode = "unknown_parameter" // not a parameter (or field) of this route
	CodeRepeated         ErrorCode = "repeated"          // a parameter given more than once that takes one value
	CodeInvalidBody      ErrorCode = "invalid_body"      // the body is not a JSON object
	CodeInvalidType      ErrorCode = "invalid_type"      // a JSON field of the wrong type
	CodeInvalidCondition ErrorCode = "invalid_condition" // an info condition that is not KEY:OP:VALUE or {key, op, value}
	CodeInvalidFormat    ErrorCode = "invalid_format"    // an export format other than jsonl or csv
)

// ParamError is one invalid request parameter: a query parameter, a JSON
// field (info[1].op), or a path parameter.
type ParamError struct {
	Param   string    `json:"param"`
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
	// Index is which value of a repeated parameter or array (tag, info,
	// channel) the error is about, from 0.
	Index *int `json:"index,omitempty"`
	// Limit is the bound the value broke (too_many, too_long,
	// invalid_limit, interval_too_long).
	Limit int `json:"limit,omitempty"`
}

// reject records an invalid parameter.
func (p *parser) reject(param string, code ErrorCode, format string, args ...any) {
	p.add(ParamError{Param: param, Code: code}, format, args...)
}

// add records an invalid parameter with its index or limit.
func (p *parser) add(e ParamError, format string, args ...any) {
	e.Message = fmt.Sprintf(format, args...)
	p.errs = append(p.errs, e)
}

func index(i int) *int { return &i }
