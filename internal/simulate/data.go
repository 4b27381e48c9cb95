package simulate

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
)

// The words of the simulated conversations are data (data/*.json): the
// vocabulary (names, places, what customers type) and the scripts of the
// human agents by queue. The flows that pick from them, and the bot's lines
// that carry amounts and dates, are code.
//
//go:embed data/*.json
var dataFiles embed.FS

// vocabulary is data/vocabulary.json and data/scripts.json, checked.
type vocabulary struct {
	BotNames        []string            `json:"bot_names"`
	Greetings       []string            `json:"greetings"`
	ReturnGreetings []string            `json:"return_greetings"`
	OffMenu         []string            `json:"off_menu"`
	FirstNames      []firstName         `json:"first_names"`
	Surnames        []string            `json:"surnames"`
	Nicknames       []string            `json:"nicknames"`
	NameEmojis      []string            `json:"name_emojis"`
	Areas           []area              `json:"areas"`
	MenuChoices     map[string][]string `json:"menu_choices"`
	Replies         replies             `json:"replies"`

	// From the files, in the form the generator reads them.
	areaWeights []int
	menuChoices [][]string // by flow
	scripts     map[string][][]line
	transfers   map[string][]string
}

type firstName struct {
	Name   string `json:"name"`
	Female bool   `json:"female"`
}

// area is a telephone area code (DDD) and its main city, weighted roughly
// by population.
type area struct {
	DDD    string `json:"ddd"`
	City   string `json:"city"`
	Weight int    `json:"weight"`
}

// replies are what customers answer at points of the bot flows.
type replies struct {
	OneInvoice     []string `json:"one_invoice"`
	TwoInvoices    []string `json:"two_invoices"`
	ContestInvoice []string `json:"contest_invoice"`
	NoDeal         []string `json:"no_deal"`
	SupportProblem []string `json:"support_problem"`
	StillBroken    []string `json:"still_broken"`
	Fixed          []string `json:"fixed"`
	Cancel         []string `json:"cancel"`
	InvoiceDoubt   []string `json:"invoice_doubt"`
	Registration   []string `json:"registration"`
	ProofCaption   []string `json:"proof_caption"`
	NothingMore    []string `json:"nothing_more"`
	Impatient      []string `json:"impatient"`
	ThanksAgent    []string `json:"thanks_agent"`
}

// line is one message of an agent script: the agent's, or the customer's
// (with Image, a photo with the text as caption).
type line struct {
	Agent    string `json:"agent"`
	Customer string `json:"customer"`
	Image    bool   `json:"image"`
}

// flowNames name the flows in menu_choices, in flow order.
var flowNames = []string{"bill", "debt", "support", "plans", "human", "payment"}

// words is the vocabulary, read once. The files are compiled in and checked
// by the tests, so a broken one is a programming error.
var words = sync.OnceValue(func() *vocabulary {
	v, err := loadVocabulary()
	if err != nil {
		panic(fmt.Sprintf("simulate: %v", err))
	}
	return v
})

func loadVocabulary() (*vocabulary, error) {
	v := &vocabulary{}
	if err := decodeData("data/vocabulary.json", v); err != nil {
		return nil, err
	}
	var book struct {
		Scripts   map[string][][]line `json:"scripts"`
		Transfers map[string][]string `json:"transfers"`
	}
	if err := decodeData("data/scripts.json", &book); err != nil {
		return nil, err
	}
	v.scripts, v.transfers = book.Scripts, book.Transfers
	var errs []error
	for _, list := range []reflect.Value{reflect.ValueOf(*v), reflect.ValueOf(v.Replies)} {
		for i := range list.NumField() {
			f := list.Type().Field(i)
			if f.IsExported() && f.Type.Kind() == reflect.Slice && list.Field(i).Len() == 0 {
				errs = append(errs, fmt.Errorf("vocabulary: %s is empty", f.Tag.Get("json")))
			}
		}
	}
	for _, a := range v.Areas {
		if a.Weight <= 0 {
			errs = append(errs, fmt.Errorf("vocabulary: area %s has no weight", a.DDD))
		}
		v.areaWeights = append(v.areaWeights, a.Weight)
	}
	for _, f := range flowNames {
		if len(v.MenuChoices[f]) == 0 {
			errs = append(errs, fmt.Errorf("vocabulary: no menu choices of flow %s", f))
		}
		v.menuChoices = append(v.menuChoices, v.MenuChoices[f])
	}
	for queue, to := range v.transfers {
		for _, q := range append([]string{queue}, to...) {
			if len(v.scripts[q]) == 0 {
				errs = append(errs, fmt.Errorf("scripts: queue %s has no script", q))
			}
		}
	}
	for queue, ss := range v.scripts {
		if len(v.transfers[queue]) == 0 {
			errs = append(errs, fmt.Errorf("scripts: queue %s transfers nowhere", queue))
		}
		for _, s := range ss {
			for _, l := range s {
				if (l.Agent == "") == (l.Customer == "" && !l.Image) || (l.Agent != "" && l.Image) {
					errs = append(errs, fmt.Errorf("scripts: queue %s: a line is the agent's or the customer's: %+v", queue, l))
				}
			}
		}
	}
	return v, errors.Join(errs...)
}

// decodeData decodes an embedded file into v; unknown names are errors.
func decodeData(name string, v any) error {
	data, err := dataFiles.ReadFile(name)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
