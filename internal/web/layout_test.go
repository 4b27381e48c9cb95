package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestScreenLayout drives what an operator feels rather than what the API
// answers: a dense list, a popup that holds still under the wheel at desktop
// and phone widths, exports that can be watched and cancelled, a refused
// link explained in Portuguese, and a conversation's details on a phone.
func TestScreenLayout(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	f := newFixture(t)
	p := newPage(t, f.url)
	all := f.all(t)

	p.do(chromedp.Navigate(f.url + "/"))
	p.do(chromedp.WaitVisible(chromedp.CSS("#login-key")))
	// The sign-in page fits the screen: no scroll bar for a pixel.
	if h := eval[float64](p, `document.documentElement.scrollHeight - innerHeight`); h > 0 {
		t.Errorf("the sign-in page is %v px taller than the screen", h)
	}
	seq := p.seq()
	p.typeInto("#login-key", apiKey)
	p.click("#login-form button[type=submit]")
	p.waitList(seq)

	p.checkDenseList(f, len(all))
	p.checkTagsShown()
	p.checkHandoffMarks(all)
	for _, size := range []struct{ w, h int64 }{{1400, 900}, {390, 844}} {
		p.checkPopupHoldsStill(size.w, size.h)
	}
	p.checkExportProgress(f, len(all))
	p.checkRefusedLink(f)
	p.checkPhone(all[0].SessionID)

	for _, e := range p.scriptErrors() {
		t.Errorf("uncaught exception in the page: %s", e)
	}
}

// checkDenseList: many rows on a 900 px screen, each a whole target, and
// where the page is in the list.
func (p *page) checkDenseList(f *fixture, total int) {
	t := p.t
	t.Helper()
	p.do(chromedp.EmulateViewport(1440, 900))
	visible := eval[int](p, `[...document.querySelectorAll('#rows tr')].filter(r => r.getBoundingClientRect().bottom <= innerHeight).length`)
	if visible < 14 {
		t.Errorf("%d rows fit on a 1440×900 screen, want at least 14", visible)
	}
	if eval[bool](p, `(() => { const w = document.querySelector('.table-wrap'); return w.scrollWidth > w.clientWidth; })()`) {
		t.Error("the list is wider than its card at 1440 px")
	}
	if got, want := p.text("#page-range"), fmt.Sprintf("1–20 de %d", total); got != want {
		t.Errorf("page range %q, want %q", got, want)
	}
	seq := p.seq()
	p.click("#next-page")
	p.waitList(seq)
	if got, want := p.text("#page-range"), fmt.Sprintf("21–40 de %d", total); got != want {
		t.Errorf("second page range %q, want %q", got, want)
	}
	seq = p.seq()
	p.click("#prev-page")
	p.waitList(seq)
	// The Exportar caption is text, not a control: no border, no fill, not
	// focusable, and no pointer.
	label := eval[map[string]string](p, `(() => { const s = getComputedStyle(document.querySelector('.btn-group-label'));
		return { border: s.borderTopWidth, background: s.backgroundColor, cursor: s.cursor }; })()`)
	if label["border"] != "0px" || label["background"] != "rgba(0, 0, 0, 0)" || label["cursor"] == "pointer" {
		t.Errorf("the Exportar caption looks like a button: %v", label)
	}
	// A click anywhere on a row opens its conversation.
	id := eval[string](p, `document.querySelector('#rows tr:nth-child(3)').dataset.sessionId`)
	p.click("#rows tr:nth-child(3) .col-date")
	p.until("the conversation", `!document.querySelector('#conversation-view').hidden &&
		document.querySelector('#conv-body').getAttribute('aria-busy') === 'false'`)
	if got := p.search().Get("open"); got != id {
		t.Errorf("a click on the row opened %q, want %q", got, id)
	}
	p.click("#conv-back")
	p.until("the list", `!document.querySelector('#list-view').hidden`)
}

// checkTagsShown: at a laptop's 1366 px, a list filtered by a tag shows
// that tag in every row (first, whatever its place in the alphabet), and a
// row's tags are never cut off unmarked: a chip that does not fit ends in an
// ellipsis and the "+N" of the others stays whole.
func (p *page) checkTagsShown() {
	t := p.t
	t.Helper()
	p.do(chromedp.EmulateViewport(1366, 900))
	const tag = "Transbordo Humano" // late in the alphabet, with many tags before it
	p.do(chromedp.Navigate(p.base + "/?tag=" + url.QueryEscape(tag)))
	p.waitList(0) // a fresh page counts its lists from 0
	rows := eval[[]map[string]any](p, `[...document.querySelectorAll('#rows tr')].map((tr) => {
		const cell = tr.querySelector('td.col-tags').getBoundingClientRect();
		const chips = [...tr.querySelectorAll('.col-tags .tag')];
		return {
			first: chips[0]?.textContent ?? '',
			cut: chips.filter((c) => {
				const r = c.getBoundingClientRect();
				const marked = c.scrollWidth > c.clientWidth && getComputedStyle(c).textOverflow === 'ellipsis';
				return r.right > cell.right + 0.5 && !marked;
			}).map((c) => c.textContent).join(', '),
			more: chips.filter((c) => c.classList.contains('tag-more')).every((c) => c.getBoundingClientRect().right <= cell.right + 0.5),
		};
	})`)
	if len(rows) == 0 {
		t.Fatalf("no rows for the tag %q", tag)
	}
	for i, r := range rows {
		if r["first"] != tag {
			t.Errorf("row %d filtered by %q shows %q first", i, tag, r["first"])
		}
		if r["cut"] != "" || r["more"] != true {
			t.Errorf("row %d at 1366 px: tags cut off unmarked %q, the +N whole: %v", i, r["cut"], r["more"])
		}
	}
	// A long first tag leaves room for the others and the "+N": the later
	// chips keep a few letters and an ellipsis, never an empty pill.
	long := eval[map[string]any](p, `(() => {
		const tr = [...document.querySelectorAll('#rows tr')].find((r) => r.querySelector('.col-tags .tag-more'));
		if (!tr) return {found: false};
		const chips = [...tr.querySelectorAll('.col-tags .tag')];
		chips[0].textContent = 'Uma etiqueta muito longa que não cabe inteira na célula da lista';
		const cell = tr.querySelector('td.col-tags').getBoundingClientRect();
		const more = tr.querySelector('.tag-more').getBoundingClientRect();
		const narrowest = Math.min(...chips.slice(1).filter((c) => !c.classList.contains('tag-more')).map((c) => c.getBoundingClientRect().width));
		return {found: true, moreWhole: more.right <= cell.right + 0.5, narrowest};
	})()`)
	if long["found"] != true {
		t.Fatalf("no row filtered by %q has a +N", tag)
	}
	if long["moreWhole"] != true || long["narrowest"].(float64) < 28 {
		t.Errorf("with a long first tag at 1366 px: the +N whole %v, the narrowest other chip %.0f px (want ≥ 28)", long["moreWhole"], long["narrowest"])
	}
	p.do(chromedp.EmulateViewport(1440, 900))
	p.do(chromedp.Navigate(p.base + "/"))
	p.waitList(0)
}

// checkHandoffMarks: in English at 1366 px, where an attendance's period
// ("12/03/2026, 05:23 AM – 05:31 AM") fills most of its line, the
// Handed off mark beside it stays on one line.
func (p *page) checkHandoffMarks(all []sessionJSON) {
	t := p.t
	t.Helper()
	p.do(chromedp.EmulateViewport(1366, 900))
	p.click(`.lang-button[data-lang="en"]`)
	opened := 0
	for _, s := range all {
		if !s.HandedOff || opened == 3 {
			continue
		}
		opened++
		p.do(chromedp.Navigate(p.base + "/?open=" + s.SessionID))
		p.until("the conversation", `document.querySelectorAll('#timeline .bubble').length > 0 &&
			document.querySelector('#conv-body').getAttribute('aria-busy') === 'false'`)
		heights := eval[[]float64](p, `[...document.querySelectorAll('.attendance-meta .handoff-mark')].map((m) => m.getBoundingClientRect().height)`)
		if len(heights) == 0 {
			t.Errorf("session %s was handed off and no attendance says so", s.SessionID)
		}
		for _, h := range heights {
			if h > 26 {
				t.Errorf("session %s: a Handed off mark %v px high, on more than one line", s.SessionID, h)
			}
		}
	}
	if opened == 0 {
		t.Fatal("no session handed off in the fixture")
	}
	p.click(`.lang-button[data-lang="pt-BR"]`)
	p.do(chromedp.EmulateViewport(1440, 900))
	p.do(chromedp.Navigate(p.base + "/"))
	p.waitList(0)
}

type box struct{ Top, Bottom, Left, Right float64 }

func (p *page) rect(sel string) box {
	p.t.Helper()
	return eval[box](p, fmt.Sprintf(`(() => { const r = document.querySelector(%q).getBoundingClientRect();
		return { Top: r.top, Bottom: r.bottom, Left: r.left, Right: r.right }; })()`, sel))
}

// wheel turns the mouse wheel over the middle of sel, times times.
func (p *page) wheel(sel string, times int, deltaY float64) {
	p.t.Helper()
	r := p.rect(sel)
	x, y := (r.Left+r.Right)/2, (r.Top+r.Bottom)/2
	for range times {
		p.do(chromedp.MouseEvent(input.DispatchMouseEventTypeMouseWheel, x, y, func(e *input.DispatchMouseEventParams) {
			e.DeltaY = deltaY
			e.DeltaX = 1e-9 // the protocol needs both deltas, and omits a zero
		}))
		time.Sleep(40 * time.Millisecond)
	}
	time.Sleep(400 * time.Millisecond) // smooth scrolling settles
}

// checkPopupHoldsStill wheels inside the filter popup: only its body
// scrolls; its header (title, ×) and footer (Aplicar) stay in view where
// they were, and the list behind does not move.
func (p *page) checkPopupHoldsStill(w, h int64) {
	t := p.t
	t.Helper()
	p.do(chromedp.EmulateViewport(w, h))
	eval[chromedp.Void](p, `scrollTo(0, 0)`)
	p.click("#filter-button")
	p.until("the popup", `document.querySelector('#filter-dialog').open &&
		document.querySelector('#filter-dialog').dataset.facets !== 'loading'`)
	// The list behind, scrolled a little, must stay where it is.
	eval[chromedp.Void](p, `document.scrollingElement.scrollTop = 120`)
	pageY := eval[float64](p, `scrollY`)
	if pageY == 0 {
		t.Fatalf("%d px: the list is too short to scroll", w)
	}
	if w <= 640 {
		eval[chromedp.Void](p, `document.activeElement.blur()`)
		p.screenshot("filter-phone.png")
	}
	for range 3 {
		p.click("#f-info-add")
	}
	if !eval[bool](p, `(() => { const b = document.querySelector('.dialog-body'); return b.scrollHeight > b.clientHeight + 100; })()`) {
		t.Fatalf("%d px: the popup's body does not overflow; the test needs it to", w)
	}
	head, foot := p.rect(".dialog-head"), p.rect(".dialog-foot")
	for _, step := range []struct {
		name  string
		delta float64
		times int
	}{{"down", 300, 4}, {"past the end", 400, 12}, {"back up", -400, 16}} {
		p.wheel(".dialog-body", step.times, step.delta)
		scrolled := eval[float64](p, `document.querySelector('.dialog-body').scrollTop`)
		switch step.name {
		case "down":
			if scrolled == 0 {
				t.Errorf("%d px: wheeling in the popup did not scroll its body", w)
			}
		case "back up":
			if scrolled != 0 {
				t.Errorf("%d px: the popup's body is at %v after wheeling back up", w, scrolled)
			}
		}
		if got := p.rect(".dialog-head"); got != head {
			t.Errorf("%d px, wheel %s: the popup's header moved from %+v to %+v", w, step.name, head, got)
		}
		if got := p.rect(".dialog-foot"); got != foot {
			t.Errorf("%d px, wheel %s: the popup's footer moved from %+v to %+v", w, step.name, foot, got)
		}
		if y := eval[float64](p, `scrollY`); y != pageY {
			t.Errorf("%d px, wheel %s: the page behind the popup scrolled from %v to %v", w, step.name, pageY, y)
		}
		if d := eval[float64](p, `document.querySelector('#filter-dialog').scrollTop`); d != 0 {
			t.Errorf("%d px, wheel %s: the popup itself scrolled by %v", w, step.name, d)
		}
	}
	vw, vh := float64(w), float64(h)
	if head.Top < 0 || foot.Bottom > vh || head.Left < 0 || head.Right > vw || foot.Bottom-head.Top < 200 {
		t.Errorf("%d×%d: the popup's header %+v or footer %+v is off screen", w, h, head, foot)
	}
	// Not blank: the title, the first field and Aplicar are painted where
	// they are.
	for _, sel := range []string{"#filter-title", "#filter-apply", "#filter-close"} {
		if hit := eval[bool](p, fmt.Sprintf(`(() => { const el = document.querySelector(%q); const r = el.getBoundingClientRect();
			return r.width > 0 && el.contains(document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2)); })()`, sel)); !hit {
			t.Errorf("%d px: %s is not visible in the popup", w, sel)
		}
	}
	p.do(chromedp.KeyEvent(kb.Escape))
	p.until("the popup to close", `!document.querySelector('#filter-dialog').open`)
	p.do(chromedp.EmulateViewport(1440, 900))
	eval[chromedp.Void](p, `scrollTo(0, 0)`)
}

// checkExportProgress watches an export held after its first write, cancels
// it, then exports to the end.
func (p *page) checkExportProgress(f *fixture, total int) {
	t := p.t
	t.Helper()
	// Downloads from memory: no file picker.
	eval[chromedp.Void](p, `window.showSaveFilePicker = undefined`)
	full := httpBodySize(t, f, "/api/v1/export", url.Values{"format": {"jsonl"}})

	gate := make(chan struct{})
	f.record.exportGate.Store(&gate)
	n := f.record.count("/api/v1/export")
	p.click("#export-jsonl")
	p.until("export progress", `document.querySelector('#export-panel').dataset.state === 'running' &&
		/[1-9]\d* sessões até agora/.test(document.querySelector('#export-text').textContent)`)
	progress := p.text("#export-text")
	if !strings.Contains(progress, "JSONL") || !strings.Contains(progress, "B") {
		t.Errorf("progress %q: want the format and the bytes so far", progress)
	}
	if !eval[bool](p, `document.querySelector('#export-csv').disabled && document.querySelector('#export-jsonl').disabled`) {
		t.Error("the export buttons are enabled while an export runs")
	}
	p.click("#export-cancel")
	p.until("the cancelled export", `document.querySelector('#export-panel').dataset.state === 'cancelled'`)
	if msg := p.text("#export-text"); !strings.Contains(msg, "cancelada") {
		t.Errorf("cancelled export says %q", msg)
	}
	req := f.record.wait(t, "/api/v1/export", n)
	if req.Bytes >= full {
		t.Errorf("the cancelled export sent %d bytes, the whole export is %d", req.Bytes, full)
	}
	time.Sleep(300 * time.Millisecond)
	if entries, _ := os.ReadDir(p.downloads); len(entries) > 0 {
		t.Errorf("a cancelled export left files: %v", entries)
	}
	f.record.exportGate.Store(nil)
	close(gate)

	// To the end: CSV, whose rows are messages; the panel counts sessions.
	if eval[bool](p, `document.querySelector('#export-csv').disabled`) {
		t.Fatal("the CSV button stays disabled after the cancel")
	}
	p.click("#export-csv")
	p.until("the finished export", `document.querySelector('#export-panel').dataset.state === 'done'`)
	file := p.download(".csv")
	msg := p.text("#export-text")
	if want := fmt.Sprintf("Exportação concluída: %d sessões", total); !strings.HasPrefix(msg, want) || !strings.Contains(msg, ".csv") {
		t.Errorf("finished export says %q, want %q… and the file name", msg, want)
	}
	if len(file) == 0 {
		t.Error("empty CSV export")
	}
	p.screenshot("export.png")
	p.click("#export-dismiss")
	p.until("the message dismissed", `document.querySelector('#export-panel').hidden`)
}

// httpBodySize is the size of the API's answer to path?q.
func httpBodySize(t *testing.T, f *fixture, path string, q url.Values) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.url+path+"?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	n := 0
	buf := make([]byte, 32<<10)
	for {
		k, err := res.Body.Read(buf)
		n += k
		if err != nil {
			return n
		}
	}
}

// checkRefusedLink opens a shared link the API refuses: the popup shows each
// bad field marked, in Portuguese, with every other field kept; closed, the
// page says what happened and how to fix it.
func (p *page) checkRefusedLink(f *fixture) {
	t := p.t
	t.Helper()
	link := url.Values{
		"protocol": {"123"}, "tag": {"Menu Principal"}, "handed_off": {"true"},
		"info": {"PLANO:like:fibra", "CPF_VALIDADO:equals:true"},
		"from": {"2025-01-01"}, "to": {"2025-03-15"},
	}
	p.do(chromedp.Navigate(f.url + "/?" + link.Encode()))
	p.until("the refused link's popup", `document.querySelector('#filter-dialog').open &&
		document.querySelector('#f-protocol-error').textContent !== ''`)
	for sel, want := range map[string]string{
		"#f-protocol-error":                  "17 dígitos",
		"#f-to-error":                        "31 dias",
		".info-row:nth-child(1) .info-error": "Operação desconhecida",
	} {
		if got := p.text(sel); !strings.Contains(got, want) {
			t.Errorf("%s says %q, want %q", sel, got, want)
		}
	}
	if body := p.text(".dialog-body"); strings.Contains(body, "must") || strings.Contains(body, "unknown operation") {
		t.Errorf("the popup shows the API's English: %q", body)
	}
	marked := eval[map[string]bool](p, `(() => { const inv = (sel) => document.querySelector(sel)?.getAttribute('aria-invalid') === 'true';
		return { protocol: inv('#f-protocol'), to: inv('#f-to'), op1: inv('.info-row:nth-child(1) .info-op'),
			key2: inv('.info-row:nth-child(2) .info-key'), value2: inv('.info-row:nth-child(2) .info-value') }; })()`)
	if !marked["protocol"] || !marked["to"] || !marked["op1"] || marked["key2"] || marked["value2"] {
		t.Errorf("fields marked invalid: %v; want the protocol, the end date and the first condition's operation only", marked)
	}
	kept := eval[map[string]string](p, `(() => ({
		from: document.querySelector('#f-from').value, protocol: document.querySelector('#f-protocol').value,
		handed: String(document.querySelector('#f-handed-yes').checked),
		tag: String(document.querySelector('#f-tags-list input[value="Menu Principal"]')?.checked),
		key2: document.querySelector('.info-row:nth-child(2) .info-key').value,
		value2: document.querySelector('.info-row:nth-child(2) .info-value').value,
	}))()`)
	want := map[string]string{"from": "2025-01-01", "protocol": "123", "handed": "true", "tag": "true", "key2": "CPF_VALIDADO", "value2": "true"}
	for k, v := range want {
		if kept[k] != v {
			t.Errorf("refused link: %s is %q in the popup, want %q kept", k, kept[k], v)
		}
	}
	p.do(chromedp.KeyEvent(kb.Escape))
	p.until("the popup to close", `!document.querySelector('#filter-dialog').open`)
	if msg := p.text("#list-alert"); !strings.Contains(msg, "recusado") || !strings.Contains(msg, "Protocolo") {
		t.Errorf("behind the popup, the page says %q", msg)
	}
	if n := eval[int](p, `document.querySelectorAll('#chips .chip').length`); n < 5 {
		t.Errorf("%d chips for the refused link's criteria", n)
	}
	// In English, the same errors in English.
	p.click(`.lang-button[data-lang="en"]`)
	if msg := p.text("#list-alert"); !strings.Contains(msg, "refused") || !strings.Contains(msg, "17 digits") {
		t.Errorf("in English, the page says %q", msg)
	}
	p.click("#list-alert button")
	p.until("the popup again", `document.querySelector('#filter-dialog').open &&
		document.querySelector('#f-protocol').getAttribute('aria-invalid') === 'true'`)
	if got := p.text("#f-protocol-error"); !strings.Contains(got, "17 digits") {
		t.Errorf("English protocol error %q", got)
	}
	p.do(chromedp.KeyEvent(kb.Escape))
	p.until("the popup to close", `!document.querySelector('#filter-dialog').open`)
	p.click(`.lang-button[data-lang="pt-BR"]`)
}

// checkPhone: on a phone the list stays readable and a conversation's
// details come before its timeline.
func (p *page) checkPhone(id string) {
	t := p.t
	t.Helper()
	p.do(chromedp.EmulateViewport(390, 844))
	p.do(chromedp.Navigate(p.base + "/"))
	p.waitList(0) // a fresh page counts from 0
	if w := eval[float64](p, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the phone list is %v px wide", w)
	}
	// Each card's attendance outcome is whole inside its cell, which clips
	// what overflows.
	if clipped := eval[[]string](p, `[...document.querySelectorAll('#rows td.col-attendance')].flatMap((td) => {
		const cell = td.getBoundingClientRect();
		return [...td.querySelectorAll('.attendance-shown .status')].filter((s) => {
			const r = s.getBoundingClientRect();
			return s.scrollWidth > s.clientWidth || r.left < cell.left - 0.5 || r.right > cell.right + 0.5 ||
				r.top < cell.top - 0.5 || r.bottom > cell.bottom + 0.5;
		}).map((s) => s.textContent);
	})`); len(clipped) > 0 {
		t.Errorf("on a phone %d outcomes are cut off by their card: %q", len(clipped), clipped)
	}
	p.screenshot("list-phone.png")
	p.do(chromedp.Navigate(p.base + "/?open=" + id))
	p.until("the conversation", `document.querySelectorAll('#timeline .bubble').length > 0 &&
		document.querySelector('#conv-body').getAttribute('aria-busy') === 'false'`)
	details, chat := p.rect(".details-card"), p.rect(".chat-card")
	if details.Top >= chat.Top {
		t.Errorf("on a phone the details start at %v, below the timeline at %v", details.Top, chat.Top)
	}
	p.screenshot("conversation-phone.png")
	p.do(chromedp.EmulateViewport(1440, 900))
}
