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

// TestOneTokenAgreesWithFTS5: where oneToken says one token, FTS5 — a
// table made as session_words is, counted through fts5vocab — reads one
// token. Every code point Go's tables call a letter or a digit is checked
// between two letters, so that a character whose category changed after
// Unicode 6.1 (the version unicode61 follows) and is not in fts5Splits
// fails it; then some words, among them ones FTS5 reads as one token where
// oneToken safely says no.
func TestOneTokenAgreesWithFTS5(t *testing.T) {
	const shortener = "\u19b0" // NEW TAI LUE VOWEL SIGN VOWEL SHORTENER: Mc in 6.1, Lo since 8.0
	const yot = "\u037f"       // GREEK CAPITAL LETTER YOT: unassigned in 6.1, Lu since 7.0
	for _, c := range shortener + yot {
		if !unicode.IsLetter(c) {
			t.Fatalf("Go's tables do not call %U a letter: the test needs one they do", c)
		}
	}
	// Every letter and digit, "a<c>b" each, a row each: one token where
	// c is a token character to FTS5, two where it splits (1 s; 40 under
	// the race detector, which runs the tests with -short).
	if !testing.Short() {
		var runes []rune
		var texts []string
		for r := rune(0); r <= unicode.MaxRune; r++ {
			if unicode.IsLetter(r) || unicode.IsNumber(r) {
				runes, texts = append(runes, r), append(texts, "a"+string(r)+"b")
			}
		}
		for i, n := range fts5Tokens(t, texts) {
			if one := oneToken(texts[i]); one && n != 1 || !one && n == 1 {
				t.Errorf("%U: FTS5 reads %q as %d tokens, oneToken says one: %v", runes[i], texts[i], n, one)
			}
		}
	}

	cases := []struct {
		word string
		one  bool // oneToken's answer
		fts5 int  // FTS5's tokens
	}{
		{"segunda", true, 1},
		{"Via2", true, 1},
		{"ação", true, 1},
		{"NÃO", true, 1},
		{"日本語", true, 1},
		{"a\ue000b", false, 1}, // private use: a token character of unicode61 (Co), not a letter to Go
		{"segunda-via", false, 2},
		{"123.456", false, 2},
		{"a" + shortener + "b", false, 2}, // FTS5: "a" and "b"
		{shortener, false, 0},             // FTS5: no token at all
		{"a" + yot + "b", true, 1},        // unassigned in 6.1: a token character
		{"ok👍", false, 1},                 // a symbol to Go's tables, a token character to FTS5
		{"a–b", false, 2},                 // en dash
		{"não·sei", false, 2},
		{"", false, 0},
	}
	words := make([]string, len(cases))
	for i, tc := range cases {
		words[i] = tc.word
	}
	for i, n := range fts5Tokens(t, words) {
		tc := cases[i]
		if n != tc.fts5 {
			t.Errorf("FTS5 reads %q as %d tokens, the case says %d", tc.word, n, tc.fts5)
		}
		if got := oneToken(tc.word); got != tc.one {
			t.Errorf("oneToken(%q) = %v, want %v (FTS5: %d tokens)", tc.word, got, tc.one, n)
		}
	}
}

// fts5Tokens counts the tokens FTS5 reads in each of texts, through an
// fts5vocab instance table over a table made as session_words is.
func fts5Tokens(t *testing.T, texts []string) []int {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one in-memory database
	i := strings.Index(schema, "CREATE VIRTUAL TABLE IF NOT EXISTS session_words")
	create := schema[i : i+strings.Index(schema[i:], ";")+1]
	if _, err := db.ExecContext(ctx, create+`CREATE VIRTUAL TABLE v USING fts5vocab(session_words, 'instance');`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a scratch database
	for j, text := range texts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO session_words (rowid, text) VALUES (?, ?)`, j+1, text); err != nil {
			t.Fatal(err)
		}
	}
	n := make([]int, len(texts))
	rows, err := tx.QueryContext(ctx, `SELECT doc, count(*) FROM v GROUP BY doc`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var doc, c int
		if err := rows.Scan(&doc, &c); err != nil {
			t.Fatal(err)
		}
		n[doc-1] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
