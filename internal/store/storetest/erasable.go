package storetest

import (
	"bytes"
	"fmt"
	"time"

	"github.com/chatreport/chatreport/internal/event"
)

// Erasable are two contacts with words, phones and names found nowhere
// else, so that their bytes in the database file are theirs: Marks are
// the word, the contact id, the id reversed (as the SQLite store keeps it
// for searches by the end of a phone number), the phone's end and the
// folded name. Each word's
// first letters are no other word's, so that FTS5 stores it whole (a leaf
// stores a term as the prefix it shares with the term before it and the
// rest).
var Erasable = []struct {
	B     B
	Marks []string
}{
	{B{Contact: "5511987650001", Phone: "+55 11 98765-0001", Name: "Quixotina Wexburga"},
		[]string{"xilofonetrovejante", "5511987650001", "1000567891155", "98765-0001", "quixotina wexburga"}},
	{B{Contact: "5521912340002", Phone: "+55 21 91234-0002", Name: "Zoroaldo Pimbertino"},
		[]string{"jabuticabeiraflorida", "5521912340002", "2000432191255", "91234-0002", "zoroaldo pimbertino"}},
}

// ErasableEvents are the two contacts' sessions, a message per update (so
// that each session's document is written again and again, leaving old
// copies in the file's free space), and with enough other traffic that the
// full-text index has several segments.
func ErasableEvents() [][]event.Event {
	var batches [][]event.Event
	for i := range 12 {
		var batch []event.Event
		for _, c := range Erasable {
			at := time.Duration(i) * time.Minute
			batch = append(batch, c.B.Msg(fmt.Sprint(c.B.Contact, i), at, event.RoleCustomer,
				fmt.Sprint("mensagem ", i, " com ", c.Marks[0], " dentro")))
		}
		batch = append(batch, B{Contact: "filler"}.Msg(fmt.Sprint("filler", i), time.Duration(i)*time.Minute,
			event.RoleCustomer, "texto comum de outro cliente"))
		batches = append(batches, batch)
	}
	return batches
}

// Found lists which of marks b holds, folding ASCII case.
func Found(b []byte, marks []string) []string {
	b = bytes.ToLower(b)
	var in []string
	for _, m := range marks {
		if bytes.Contains(b, []byte(m)) {
			in = append(in, m)
		}
	}
	return in
}
