package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// wordsTokenizer is the tokenizer of message_words and session_words
// (schema.sql; TestTokenizerIsTheSchemas holds the two equal).
const wordsTokenizer = "unicode61 remove_diacritics 2"

// oneToken reports whether FTS5's tokenizer reads word as one token: a
// search of it through session_words then finds what message_words finds,
// while a word of several tokens is a phrase, which a session's texts, one
// after another, could match across two messages (queryCondition).
//
// unicode61 tells token characters from separators by the categories of
// Unicode 6.1 (https://www.sqlite.org/fts5.html#unicode61_tokenizer), not
// by those of the Unicode version Go's tables follow. The two differ: the
// New Tai Lue vowel signs U+19B0–U+19C9 and the Vedic signs U+1CF2–U+1CF3
// were spacing marks (Mc) in 6.1 and are letters (Lo) since, so "aᦰb"
// is one letter word to unicode.IsLetter and two tokens to FTS5; characters
// unassigned in 6.1 are token characters to FTS5, whatever they became
// (TestOneTokenAgreesWithFTS5). So the tokenizer itself is asked
// (tokenProbe), but for ASCII, which it reads by a fixed table of its own:
// letters and digits are token characters, the rest separators. When it
// cannot be asked the answer is no: message_words finds the right sessions
// for any word, only more slowly.
func oneToken(word string) bool {
	if word == "" {
		return false
	}
	for i := 0; i < len(word); i++ {
		c := word[i]
		if c >= 0x80 {
			n, err := probe.tokens(word)
			return err == nil && n == 1
		}
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// probe is the process's tokenProbe.
var probe tokenProbe

// tokenProbe counts the tokens FTS5 reads in a text, in an in-memory
// database of its own (one connection, opened on first use) with an FTS5
// table of the words tables' tokenizer and an fts5vocab table over it
// (https://www.sqlite.org/fts5.html#the_fts5vocab_virtual_table_module):
// the text is inserted in a transaction, its token instances counted, and
// the transaction rolled back. It touches no file and takes tens of
// microseconds, so it runs without the request's context; answers are kept,
// up to probeMemo of them.
type tokenProbe struct {
	mu   sync.Mutex
	conn *sql.Conn
	err  error // why it could not open; it is not tried again
	memo map[string]int
}

const probeMemo = 4096

func (p *tokenProbe) tokens(text string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n, ok := p.memo[text]; ok {
		return n, nil
	}
	ctx := context.Background()
	if p.conn == nil && p.err == nil {
		p.conn, p.err = openProbe(ctx)
	}
	if p.err != nil {
		return 0, p.err
	}
	tx, err := p.conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("tokenizer probe: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO probe (rowid, text) VALUES (1, ?)`, text); err != nil {
		return 0, fmt.Errorf("tokenizer probe: %w", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM probe_tokens`).Scan(&n); err != nil {
		return 0, fmt.Errorf("tokenizer probe: %w", err)
	}
	if len(p.memo) >= probeMemo {
		clear(p.memo)
	}
	if p.memo == nil {
		p.memo = make(map[string]int)
	}
	p.memo[text] = n
	return n, nil
}

// openProbe opens the probe's database: in memory, private to its one
// connection.
func openProbe(ctx context.Context) (*sql.Conn, error) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, fmt.Errorf("tokenizer probe: %w", err)
	}
	// Each connection to ":memory:" is a database of its own: the probe
	// holds its one connection for the life of the process.
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err == nil {
		_, err = conn.ExecContext(ctx, `CREATE VIRTUAL TABLE probe USING fts5(text, tokenize = '`+wordsTokenizer+`');
			CREATE VIRTUAL TABLE probe_tokens USING fts5vocab(probe, 'instance');`)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("tokenizer probe: %w", err)
	}
	return conn, nil
}
