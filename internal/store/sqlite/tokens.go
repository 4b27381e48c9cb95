package sqlite

import "unicode"

// wordsTokenizer is the tokenizer of message_words and session_words
// (schema.sql; TestTokenizerIsTheSchemas holds the two equal).
const wordsTokenizer = "unicode61 remove_diacritics 2"

// oneToken reports whether FTS5's tokenizer surely reads word as one token:
// a search of it through session_words then finds what message_words
// finds, while a word of several tokens is a phrase, which a session's
// texts, one after another, could match across two messages
// (queryCondition). A false answer is always safe: message_words finds the
// right sessions for any word, only more slowly.
//
// Every character must be a letter or a digit to Go's tables and not one of
// fts5Splits. unicode61 tells token characters from separators by the
// categories of Unicode 6.1 (https://www.sqlite.org/fts5.html#unicode61_tokenizer),
// not by those of the version Go's tables follow; the two disagree on
// characters whose category changed since 6.1. Characters unassigned in
// 6.1 are token characters to FTS5 whatever they became, and some that Go
// does not call letters are too (private use, U+1F44D): for those the
// answer is no, which is safe. TestOneTokenAgreesWithFTS5 checks every code
// point Go calls a letter or a digit against FTS5 itself, so a Go release
// with newer tables that moves another character fails it.
func oneToken(word string) bool {
	for _, r := range word {
		if !unicode.IsLetter(r) && !unicode.IsNumber(r) || unicode.Is(fts5Splits, r) {
			return false
		}
	}
	return word != ""
}

// fts5Splits are the characters Go's tables call letters or digits and
// unicode61 reads as separators: the New Tai Lue vowel signs and the Vedic
// signs below were spacing marks (Mc) in Unicode 6.1 and are letters (Lo)
// since 8.0 (TestOneTokenAgreesWithFTS5 found them).
var fts5Splits = &unicode.RangeTable{
	R16: []unicode.Range16{
		{Lo: 0x19b0, Hi: 0x19c0, Stride: 1},
		{Lo: 0x19c8, Hi: 0x19c9, Stride: 1},
		{Lo: 0x1cf2, Hi: 0x1cf3, Stride: 1},
	},
}
