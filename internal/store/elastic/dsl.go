package elastic

import (
	"time"

	"github.com/elastic/go-elasticsearch/v8/typedapi/types"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types/enums/sortorder"
)

// Query building blocks shared by the write and the read path, on the typed
// API's types.

func termQuery(field string, value types.FieldValue) types.Query {
	return types.Query{Term: map[string]types.TermQuery{field: {Value: value}}}
}

func termsQuery(field string, values []string) types.Query {
	return types.Query{Terms: &types.TermsQuery{TermsQuery: map[string]types.TermsQueryField{field: values}}}
}

func boolFilter(filter ...types.Query) *types.Query {
	return &types.Query{Bool: &types.BoolQuery{Filter: filter}}
}

const nanosFormat = "strict_date_optional_time_nanos"

// dateRange bounds field to [from, to), or [from, to] with inclusive; a zero
// bound is open.
func dateRange(field string, from, to time.Time, inclusive bool) types.Query {
	format := nanosFormat
	r := types.DateRangeQuery{Format: &format}
	if !from.IsZero() {
		v := formatTime(from)
		r.Gte = &v
	}
	if !to.IsZero() {
		v := formatTime(to)
		if inclusive {
			r.Lte = &v
		} else {
			r.Lt = &v
		}
	}
	return types.Query{Range: map[string]types.RangeQuery{field: r}}
}

type sortField struct {
	field string
	order sortorder.SortOrder
}

func asc(field string) sortField  { return sortField{field, sortorder.Asc} }
func desc(field string) sortField { return sortField{field, sortorder.Desc} }

// dateFields are sorted on with the nanosecond format, so that sort values
// (and search_after) are exact strings, not longs a JSON float would round.
var dateFields = map[string]bool{"started_at": true, "occurred_at": true}

func sortBy(fields ...sortField) []types.SortCombinations {
	out := make([]types.SortCombinations, len(fields))
	for i, f := range fields {
		fs := types.FieldSort{Order: &f.order}
		if dateFields[f.field] {
			format := nanosFormat
			fs.Format = &format
		}
		out[i] = types.SortOptions{SortOptions: map[string]types.FieldSort{f.field: fs}}
	}
	return out
}
