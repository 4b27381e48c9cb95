package event

// LegacyDecode is Decode as it was with encoding/json, for the differential
// tests and the benchmarks of package event_test.
var LegacyDecode = legacyDecode

// LegacyParseTime is ParseTime as it was with time.Parse.
var LegacyParseTime = legacyParseTime
