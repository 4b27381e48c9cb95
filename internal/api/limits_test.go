package api

import "github.com/chatreport/chatreport/internal/report"

// The limits the tests send requests up to, by the names the tests use.
const (
	maxLimit      = report.MaxPageLimit
	maxTags       = report.MaxTags
	maxChannels   = report.MaxChannels
	maxConditions = report.MaxConditions
	maxTagLen     = report.MaxTagBytes
	maxValueLen   = report.MaxValueBytes
	maxContactLen = report.MaxContactBytes
	maxQueryLen   = report.MaxQueryBytes
)
