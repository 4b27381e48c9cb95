package versions

import (
	"bytes"
	"context"
	"fmt"
	"io"
)

// Counts are numbers of sessions and events of a version.
type Counts struct {
	Sessions, Events int64
}

// Documents reads what two versions hold, to compare them.
type Documents interface {
	Counts(ctx context.Context, version string) (Counts, error)
	// SessionDocs calls fn with every session document of version.
	SessionDocs(ctx context.Context, version string, fn func(tenant, id string, doc []byte) error) error
}

// Compare compares the counts and every session document of versions a and
// b; it prints what differs (the first five differences) to w and returns
// how many sessions do.
func Compare(ctx context.Context, docs Documents, a, b string, w io.Writer) (int, error) {
	ca, err := docs.Counts(ctx, a)
	if err != nil {
		return 0, err
	}
	cb, err := docs.Counts(ctx, b)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(w, "%s: %d sessions, %d events\n%s: %d sessions, %d events\n", a, ca.Sessions, ca.Events, b, cb.Sessions, cb.Events)
	seen := map[string][]byte{}
	if err := docs.SessionDocs(ctx, a, func(tenant, id string, doc []byte) error {
		seen[tenant+"/"+id] = doc
		return nil
	}); err != nil {
		return 0, err
	}
	diff := 0
	note := func(format string, args ...any) {
		diff++
		if diff <= 5 {
			fmt.Fprintf(w, format+"\n", args...)
		}
	}
	if err := docs.SessionDocs(ctx, b, func(tenant, id string, doc []byte) error {
		key := tenant + "/" + id
		old, ok := seen[key]
		delete(seen, key)
		switch {
		case !ok:
			note("only in %s: session %s", b, key)
		case !bytes.Equal(old, doc):
			note("differs: session %s", key)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	for key := range seen {
		note("only in %s: session %s", a, key)
	}
	if ca.Events != cb.Events && diff == 0 {
		note("event counts differ")
	}
	if diff == 0 {
		fmt.Fprintln(w, "every session document is equal")
	}
	return diff, nil
}
