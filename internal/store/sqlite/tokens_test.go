package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"unicode"
)

// TestTokenizerIsTheSchemas: the probe tokenizes as both words tables do.
func TestTokenizerIsTheSchemas(t *testing.T) {
	if n := strings.Count(schema, "tokenize = '"+wordsTokenizer+"'"); n != 2 {
		t.Fatalf("schema.sql names the tokenizer %q %d times, want 2 (message_words, session_words)", wordsTokenizer, n)
	}
}

// TestOneTokenAgreesWithFTS5: oneToken says one token exactly where FTS5,
// in a database of its own with the schema's table, reads one token —
// counted through fts5vocab — including for a character whose category
// changed after Unicode 6.1, the version unicode61 follows: a spacing mark
// then, a letter to Go's tables now.
func TestOneTokenAgreesWithFTS5(t *testing.T) {
	const shortener = "\u19b0" // NEW TAI LUE VOWEL SIGN VOWEL SHORTENER: Mc in 6.1, Lo since 8.0
	const yot = "\u037f"       // GREEK CAPITAL LETTER YOT: unassigned in 6.1, Lu since 7.0
	for _, c := range shortener + yot {
		if !unicode.IsLetter(c) {
			t.Fatalf("Go's tables do not call %U a letter: the test needs one they do", c)
		}
	}
	ctx := context.Background()
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	i := strings.Index(schema, "CREATE VIRTUAL TABLE IF NOT EXISTS session_words")
	create := schema[i : i+strings.Index(schema[i:], ";")+1]
	if _, err := db.ExecContext(ctx, create+`CREATE VIRTUAL TABLE v USING fts5vocab(session_words, 'instance');`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		word string
		one  bool
	}{
		{"segunda", true},
		{"Via2", true},
		{"ação", true},
		{"NÃO", true},
		{"日本語", true},
		{"a\ue000b", true}, // private use: a token character of unicode61 (Co)
		{"segunda-via", false},
		{"123.456", false},
		{"a" + shortener + "b", false}, // FTS5: "a" and "b"
		{shortener, false},             // FTS5: no token at all
		{"a" + yot + "b", true},        // unassigned in 6.1: a token character
		{"ok👍", true},                  // a symbol to Go's tables, a token character to FTS5
		{"a–b", false},                 // en dash
		{"não·sei", false},
		{"", false},
	} {
		res, err := db.ExecContext(ctx, `INSERT INTO session_words (text) VALUES (?)`, tc.word)
		if err != nil {
			t.Fatal(err)
		}
		row, _ := res.LastInsertId()
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM v WHERE doc = ?`, row).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if (n == 1) != tc.one {
			t.Fatalf("FTS5 reads %q as %d tokens: the case is wrong", tc.word, n)
		}
		if got := oneToken(tc.word); got != tc.one {
			t.Errorf("oneToken(%q) = %v, FTS5 reads %d tokens", tc.word, got, n)
		}
	}
}
