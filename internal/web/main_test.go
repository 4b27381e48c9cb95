package web_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine of the test server, the store and the browser connection
// ends with its test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
