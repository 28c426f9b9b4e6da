// Package printout lays a resident's printout out as an A4 PDF: the
// emergency summary, the hospital transfer pack and the person's own copy.
// It takes plain data (a Document the application layer fills from the same
// views the screens show) and knows nothing of records, storage or who may
// print: what is on the paper is decided above it, how it looks here.
//
// Every page carries who the paper is about (name, NHS number, date of
// birth), the page number out of the total, who printed it and when, and how
// current the copy was ("as of"), so a page that has come apart from the
// rest still says whose it is and how far to trust it.
//
// Text is set in Noto Sans (the desktop's own type; SIL Open Font
// License, fonts/LICENSE-NotoSans.txt), embedded as TrueType with Unicode:
// names with accents, curly quotes and dashes print as typed.
package printout

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"
)

var (
	//go:embed fonts/NotoSans-Regular.ttf
	regularTTF []byte
	//go:embed fonts/NotoSans-Bold.ttf
	boldTTF []byte
)

// The decision states a Decision can be in, as the screens name them.
const (
	Settled     = "settled"
	Conflict    = "conflict"
	NotRecorded = "not-recorded"
	Altered     = "altered" // the list's history breaks the rules: nothing in it is a decision
)

// Document is one printout, in the words it prints.
type Document struct {
	Title string // "Emergency summary"
	// Who the paper is about, on every page.
	Name        string
	NHSNumber   string // 3-3-4
	DateOfBirth string
	// Who printed it, when, and how current the copy was, on every page.
	PrintedBy string
	PrintedAt time.Time
	AsOf      string
	Stale     bool // the copy may be out of date: AsOf is printed as a warning
	// Plain prints decisions in plain words for the person or their
	// attorney rather than in the words staff use.
	Plain bool

	// The first page: a notice band (the reason for transfer), the lead
	// decision in a box of its own (CPR), then the other items.
	Notice *Notice
	Lead   *Item
	First  []Item
	// FirstNote closes the first page (that ReSPECT is a recommendation).
	FirstNote string
	// OnePage sets the first page's type smaller, as far as it stays
	// readable, so that it fits one page: the emergency summary a
	// paramedic reads on one sheet.
	OnePage bool

	// Sections follow the first page, on as many pages as they need.
	Sections []Section
}

// Notice is a band across the first page.
type Notice struct {
	Label, Text string
}

// Section is a titled group of items.
type Section struct {
	Title string
	Intro string
	Items []Item
}

// Item is a label and its value: lines of text, or a decision.
type Item struct {
	Label    string
	Lines    []Line
	Decision *Decision
}

// Line is one paragraph of a value.
type Line struct {
	Text  string
	Style Style
	Gap   bool // a little space above it: a new part of the value
}

// lineGap is the space above a Line with Gap set, in millimetres.
const lineGap = 1.2

// Style is how a line is set.
type Style int

const (
	Plain  Style = iota // ordinary text
	Strong              // the value itself
	Small               // who and when
	Warn                // needs attention: not recorded, out of date
	Danger              // not to be relied on: a conflict, an unverified entry
)

// Decision is a safety-critical value as the screens show it: settled,
// in conflict (each side named), not recorded, or altered; and any
// unverified entries, which are never the value.
type Decision struct {
	State                string
	Text, By, At, Reason string
	Sides                []Side
	Unverified           []Unverified
}

// Side is one of the decisions in a conflict.
type Side struct {
	Text, By, At, Reason string
}

// Unverified is an entry that failed verification.
type Unverified struct {
	Heading string // "Unverified entry — not a decision"
	Text    string // what it claims
	Claimed string // who it claims wrote it
	At      string
	Why     string
}

// ErrLayout means the PDF could not be laid out (a font or writer
// failure); nothing usable was written.
var ErrLayout = errors.New("printout: the PDF could not be made")

// Write lays d out and writes the PDF to w.
func Write(w io.Writer, d *Document) error {
	p := newPage(d)
	if d.OnePage {
		// The largest type at which the first page fits one sheet; at
		// the smallest it may still run over rather than leave anything
		// out.
		for _, s := range []float64{1.2, 1.12, 1.06, 1, 0.94, 0.88, 0.82, 0.76, 0.7} {
			p.scale = s
			if p.firstHeight() <= pageBottom-contentTop {
				break
			}
		}
	}
	p.render()
	if err := p.pdf.Error(); err != nil {
		return fmt.Errorf("%w: %v", ErrLayout, err)
	}
	if err := p.pdf.Output(w); err != nil {
		return fmt.Errorf("%w: %v", ErrLayout, err)
	}
	return nil
}

// Geometry of an A4 page, in millimetres.
const (
	pageW      = 210.0
	marginX    = 14.0
	contentW   = pageW - 2*marginX
	headerTop  = 10.0
	contentTop = 27.0
	footerTop  = 281.0
	pageBottom = footerTop - 3
	labelW     = 46.0 // the label column
	gap        = 4.0  // between label and value
	pad        = 1.6  // inside a tinted box
)

// colour is an RGB triple.
type colour struct{ r, g, b int }

var (
	ink       = colour{20, 20, 20}
	grey      = colour{85, 85, 85}
	rule      = colour{190, 190, 190}
	red       = colour{170, 0, 0}
	redTint   = colour{253, 228, 228}
	amber     = colour{140, 82, 0}
	amberTint = colour{255, 242, 204}
	band      = colour{232, 238, 246}
)

// page is one document being laid out.
type page struct {
	pdf   *fpdf.Fpdf
	d     *Document
	scale float64 // of the first page's type
	y     float64
}

func newPage(d *Document) *page {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.AddUTF8FontFromBytes("noto", "", regularTTF)
	pdf.AddUTF8FontFromBytes("noto", "B", boldTTF)
	pdf.SetMargins(marginX, contentTop, marginX)
	pdf.SetCellMargin(0)
	pdf.SetAutoPageBreak(false, 0)
	pdf.AliasNbPages("{nb}")
	pdf.SetTitle(d.Title+": "+d.Name, true)
	pdf.SetCreator("Haven", true)
	pdf.SetProducer("Haven", true)
	pdf.SetCreationDate(d.PrintedAt)
	pdf.SetModificationDate(d.PrintedAt)
	p := &page{pdf: pdf, d: d, scale: 1}
	pdf.SetHeaderFunc(p.header)
	pdf.SetFooterFunc(p.footer)
	return p
}

// styles: font style, size in points and colour of each Style.
func (p *page) font(s Style, big bool) (float64, colour) {
	size, col, bold := 9.5, ink, false
	switch s {
	case Strong:
		size, bold = 10, true
	case Small:
		size, col = 8, grey
	case Warn:
		bold, col = true, amber
	case Danger:
		bold, col = true, red
	}
	if big && s != Small {
		size *= 1.55
	}
	size *= p.scale
	style := ""
	if bold {
		style = "B"
	}
	p.pdf.SetFont("noto", style, size)
	p.pdf.SetTextColor(col.r, col.g, col.b)
	return size, col
}

// lineHeight of type of the given size, in millimetres.
func lineHeight(size float64) float64 { return size * 0.3528 * 1.3 }

// lines wraps text to width in style s and says the height of each line.
func (p *page) lines(text string, s Style, big bool, width float64) ([]string, float64) {
	size, _ := p.font(s, big)
	var out []string
	for _, para := range strings.Split(text, "\n") {
		if strings.TrimSpace(para) == "" {
			out = append(out, "")
			continue
		}
		out = append(out, p.pdf.SplitText(para, width)...)
	}
	return out, lineHeight(size)
}

// block is part of a value: lines, perhaps in a tinted box.
type block struct {
	lines []Line
	big   bool    // the lead decision's value
	tint  *colour // nil: no box
	edge  *colour // a border
}

// blocks turns an item's value into what to draw.
func (p *page) blocks(it Item, big bool) []block {
	if it.Decision == nil {
		return []block{{lines: it.Lines, big: big}}
	}
	dec := it.Decision
	var out []block
	switch dec.State {
	case Settled:
		b := block{big: big, lines: []Line{{Text: dec.Text, Style: Strong}}}
		if who := joinNonEmpty(", ", byWords(dec.By, p.d.Plain), dec.At); who != "" {
			b.lines = append(b.lines, Line{Text: who, Style: Small})
		}
		if dec.Reason != "" {
			b.lines = append(b.lines, Line{Text: "Reason: " + dec.Reason, Style: Small})
		}
		out = append(out, b)
	case Conflict:
		head := fmt.Sprintf("CONFLICT: %d decisions are recorded and none is settled. Check the paper form; a clinician must settle it.", len(dec.Sides))
		if p.d.Plain {
			head = fmt.Sprintf("%d different decisions are recorded and have not yet been settled. Ask the home to have a doctor settle which applies.", len(dec.Sides))
		}
		b := block{big: big, tint: &redTint, edge: &red, lines: []Line{{Text: head, Style: Danger}}}
		for i, s := range dec.Sides {
			b.lines = append(b.lines, Line{Text: fmt.Sprintf("Decision %d: %s", i+1, s.Text), Style: Strong, Gap: true},
				Line{Text: joinNonEmpty(", ", byWords(s.By, p.d.Plain), s.At, reasonWords(s.Reason)), Style: Small})
		}
		out = append(out, b)
	case Altered:
		out = append(out, block{tint: &redTint, edge: &red, lines: []Line{{Text: dec.Text, Style: Danger}}})
	default:
		text := "Not recorded"
		if dec.Text != "" {
			text = dec.Text
		}
		out = append(out, block{big: big, tint: &amberTint, lines: []Line{{Text: text, Style: Warn}}})
	}
	for _, u := range dec.Unverified {
		b := block{edge: &red, lines: []Line{{Text: strings.ToUpper(u.Heading) + ": it claims “" + u.Text + "”", Style: Danger}}}
		if p.d.Plain {
			b.lines = append(b.lines, Line{Text: "It could not be checked, so it is not part of your plan. The home has been told.", Style: Small})
		} else {
			b.lines = append(b.lines, Line{Text: joinNonEmpty(", ", u.Claimed, u.At, u.Why), Style: Small})
		}
		out = append(out, b)
	}
	return out
}

// byWords says who decided.
func byWords(by string, plain bool) string {
	switch {
	case by == "":
		return ""
	case plain:
		return "Decided by " + by
	}
	return "By " + by
}

func reasonWords(r string) string {
	if r == "" {
		return ""
	}
	return "reason: " + r
}

func joinNonEmpty(sep string, parts ...string) string {
	var keep []string
	for _, s := range parts {
		if s != "" {
			keep = append(keep, s)
		}
	}
	return strings.Join(keep, sep)
}

// blockHeight measures a block set in width.
func (p *page) blockHeight(b block, width float64) float64 {
	inner := width
	h := 0.0
	if b.tint != nil || b.edge != nil {
		inner -= 2 * pad
		h += 2 * pad
	}
	for i, l := range b.lines {
		ls, lh := p.lines(l.Text, l.Style, b.big && i == 0, inner)
		h += float64(len(ls)) * lh
		if l.Gap && i > 0 {
			h += lineGap
		}
	}
	return h
}

// drawBlock draws a block at the current y in the column from x of width,
// and moves y below it.
func (p *page) drawBlock(b block, x, width float64) {
	h := p.blockHeight(b, width)
	inner, ix, y := width, x, p.y
	if b.tint != nil || b.edge != nil {
		style := ""
		if b.tint != nil {
			p.pdf.SetFillColor(b.tint.r, b.tint.g, b.tint.b)
			style += "F"
		}
		if b.edge != nil {
			p.pdf.SetDrawColor(b.edge.r, b.edge.g, b.edge.b)
			p.pdf.SetLineWidth(0.35)
			style += "D"
		}
		p.pdf.Rect(x, y, width, h, style)
		inner, ix, y = width-2*pad, x+pad, y+pad
	}
	for i, l := range b.lines {
		ls, lh := p.lines(l.Text, l.Style, b.big && i == 0, inner)
		if l.Gap && i > 0 {
			y += lineGap
		}
		for _, s := range ls {
			p.pdf.SetXY(ix, y)
			p.pdf.CellFormat(inner, lh, s, "", 0, "LM", false, 0, "")
			y += lh
		}
	}
	p.y += h
}

// itemHeight measures an item as a row: label beside value, or the value
// across the page when it has no label.
func (p *page) itemHeight(it Item, big bool) float64 {
	x, w := p.valueColumn(it)
	_ = x
	h := 0.0
	for i, b := range p.blocks(it, big) {
		if i > 0 {
			h += 1
		}
		h += p.blockHeight(b, w)
	}
	if it.Label != "" {
		ls, lh := p.lines(it.Label, Strong, false, labelW)
		h = max(h, float64(len(ls))*lh)
	}
	return h + 2.4 // the space and rule below
}

func (p *page) valueColumn(it Item) (float64, float64) {
	if it.Label == "" {
		return marginX, contentW
	}
	return marginX + labelW + gap, contentW - labelW - gap
}

// drawItem draws an item as a row and a rule under it.
func (p *page) drawItem(it Item) {
	top := p.y
	if it.Label != "" {
		ls, lh := p.lines(it.Label, Strong, false, labelW)
		p.pdf.SetTextColor(grey.r, grey.g, grey.b)
		for i, s := range ls {
			p.pdf.SetXY(marginX, top+float64(i)*lh)
			p.pdf.CellFormat(labelW, lh, s, "", 0, "LM", false, 0, "")
		}
	}
	x, w := p.valueColumn(it)
	for i, b := range p.blocks(it, false) {
		if i > 0 {
			p.y += 1
		}
		p.drawBlock(b, x, w)
	}
	p.y = top + p.itemHeight(it, false) - 2.4
	p.y += 1.2
	p.pdf.SetDrawColor(rule.r, rule.g, rule.b)
	p.pdf.SetLineWidth(0.2)
	p.pdf.Line(marginX, p.y, marginX+contentW, p.y)
	p.y += 1.2
}

// leadHeight measures the lead decision's box.
func (p *page) leadHeight() float64 {
	it := *p.d.Lead
	_, lh := p.lines(it.Label, Strong, false, contentW)
	h := lh + 1
	for i, b := range p.blocks(it, true) {
		if i > 0 {
			h += 1
		}
		h += p.blockHeight(b, contentW-6)
	}
	return h + 6 + 3
}

// drawLead draws the lead decision in a heavy box across the page.
func (p *page) drawLead() {
	it := *p.d.Lead
	h := p.leadHeight() - 3
	p.pdf.SetDrawColor(ink.r, ink.g, ink.b)
	p.pdf.SetLineWidth(0.9)
	p.pdf.Rect(marginX, p.y, contentW, h, "D")
	top := p.y
	p.y += 3
	label := it.Label
	if !p.d.Plain {
		label = strings.ToUpper(label)
	}
	_, lh := p.lines(label, Strong, false, contentW)
	p.pdf.SetTextColor(grey.r, grey.g, grey.b)
	p.pdf.SetXY(marginX+3, p.y)
	p.pdf.CellFormat(contentW-6, lh, label, "", 0, "LM", false, 0, "")
	p.y += lh + 1
	for i, b := range p.blocks(it, true) {
		if i > 0 {
			p.y += 1
		}
		p.drawBlock(b, marginX+3, contentW-6)
	}
	p.y = top + h + 3
}

// noticeHeight measures the notice band.
func (p *page) noticeHeight() float64 {
	n := p.d.Notice
	return p.blockHeight(block{tint: &band, lines: []Line{{Text: n.Label, Style: Small}, {Text: n.Text, Style: Strong}}}, contentW) + 3
}

func (p *page) drawNotice() {
	n := p.d.Notice
	p.drawBlock(block{tint: &band, lines: []Line{{Text: n.Label, Style: Small}, {Text: n.Text, Style: Strong}}}, marginX, contentW)
	p.y += 3
}

// firstHeight is the height of the first page's content.
func (p *page) firstHeight() float64 {
	h := 0.0
	if p.d.Notice != nil {
		h += p.noticeHeight()
	}
	if p.d.Lead != nil {
		h += p.leadHeight()
	}
	for _, it := range p.d.First {
		h += p.itemHeight(it, false)
	}
	if p.d.FirstNote != "" {
		ls, lh := p.lines(p.d.FirstNote, Small, false, contentW)
		h += 1 + float64(len(ls))*lh
	}
	return h
}

// room makes sure h millimetres fit below y, starting a new page if not
// (unless nothing fits anyway: a new page would not help).
func (p *page) room(h float64) {
	if p.y+h > pageBottom && p.y > contentTop+0.5 {
		p.pdf.AddPage()
		p.y = contentTop
	}
}

func (p *page) render() {
	p.pdf.AddPage()
	p.y = contentTop
	if p.d.Notice != nil {
		p.drawNotice()
	}
	if p.d.Lead != nil {
		p.room(p.leadHeight())
		p.drawLead()
	}
	for _, it := range p.d.First {
		p.room(p.itemHeight(it, false))
		p.drawItem(it)
	}
	if p.d.FirstNote != "" {
		ls, lh := p.lines(p.d.FirstNote, Small, false, contentW)
		p.room(1 + float64(len(ls))*lh)
		p.y += 1
		p.drawBlock(block{lines: []Line{{Text: p.d.FirstNote, Style: Small}}}, marginX, contentW)
	}
	// The sections are set at full size wherever the first page's type
	// had to shrink.
	p.scale = 1
	for si, s := range p.d.Sections {
		if si == 0 && (p.d.Lead != nil || len(p.d.First) > 0) {
			p.pdf.AddPage()
			p.y = contentTop
		}
		p.drawSection(s)
	}
}

// drawSection draws a section's title with at least its first item, then
// the rest, each item whole on a page where it fits on one.
func (p *page) drawSection(s Section) {
	_, th := p.lines(s.Title, Strong, true, contentW)
	need := th + 2
	var intro []string
	var ih float64
	if s.Intro != "" {
		intro, ih = p.lines(s.Intro, Plain, false, contentW)
		need += float64(len(intro))*ih + 1.5
	}
	if len(s.Items) > 0 {
		need += p.itemHeight(s.Items[0], false)
	}
	p.room(need)
	if p.y > contentTop+0.5 {
		p.y += 2
	}
	p.font(Strong, true)
	p.pdf.SetXY(marginX, p.y)
	p.pdf.CellFormat(contentW, th, s.Title, "", 0, "LM", false, 0, "")
	p.y += th
	p.pdf.SetDrawColor(ink.r, ink.g, ink.b)
	p.pdf.SetLineWidth(0.4)
	p.pdf.Line(marginX, p.y+0.5, marginX+contentW, p.y+0.5)
	p.y += 1.5
	if s.Intro != "" {
		p.drawBlock(block{lines: []Line{{Text: s.Intro, Style: Plain}}}, marginX, contentW)
		p.y += 1.5
	}
	for _, it := range s.Items {
		h := p.itemHeight(it, false)
		if h > pageBottom-contentTop {
			p.drawLongItem(it)
			continue
		}
		p.room(h)
		p.drawItem(it)
	}
}

// drawLongItem draws an item taller than a page line by line, breaking
// pages between lines (a long note). Its label goes on the first line.
func (p *page) drawLongItem(it Item) {
	x, w := p.valueColumn(it)
	if it.Label != "" {
		_, lh := p.lines(it.Label, Strong, false, labelW)
		p.room(lh)
		p.pdf.SetTextColor(grey.r, grey.g, grey.b)
		p.pdf.SetXY(marginX, p.y)
		p.pdf.CellFormat(labelW, lh, it.Label, "", 0, "LM", false, 0, "")
	}
	for _, b := range p.blocks(it, false) {
		for _, l := range b.lines {
			ls, lh := p.lines(l.Text, l.Style, false, w)
			for _, s := range ls {
				p.room(lh)
				p.font(l.Style, false)
				p.pdf.SetXY(x, p.y)
				p.pdf.CellFormat(w, lh, s, "", 0, "LM", false, 0, "")
				p.y += lh
			}
		}
	}
	p.y += 2.4
}

// header prints who the page is about, on every page.
func (p *page) header() {
	pdf := p.pdf
	saved := p.scale
	p.scale = 1
	defer func() { p.scale = saved }()
	pdf.SetFont("noto", "B", 14)
	pdf.SetTextColor(ink.r, ink.g, ink.b)
	pdf.SetXY(marginX, headerTop)
	pdf.CellFormat(contentW*0.62, 6.5, p.d.Name, "", 0, "LM", false, 0, "")
	pdf.SetFont("noto", "B", 11)
	pdf.SetXY(marginX+contentW*0.62, headerTop)
	pdf.CellFormat(contentW*0.38, 6.5, p.d.Title, "", 0, "RM", false, 0, "")
	y := headerTop + 7
	x := marginX
	for _, f := range [][2]string{{"NHS number ", p.d.NHSNumber}, {"Date of birth ", p.d.DateOfBirth}} {
		pdf.SetFont("noto", "", 9.5)
		pdf.SetTextColor(grey.r, grey.g, grey.b)
		w := pdf.GetStringWidth(f[0])
		pdf.SetXY(x, y)
		pdf.CellFormat(w, 5, f[0], "", 0, "LM", false, 0, "")
		pdf.SetFont("noto", "B", 10.5)
		pdf.SetTextColor(ink.r, ink.g, ink.b)
		v := f[1]
		if v == "" {
			v = "not recorded"
		}
		vw := pdf.GetStringWidth(v)
		pdf.SetXY(x+w, y)
		pdf.CellFormat(vw, 5, v, "", 0, "LM", false, 0, "")
		x += w + vw + 8
	}
	pdf.SetDrawColor(ink.r, ink.g, ink.b)
	pdf.SetLineWidth(0.6)
	pdf.Line(marginX, headerTop+13.5, marginX+contentW, headerTop+13.5)
}

// footer prints how current the paper is, who printed it, and the page.
func (p *page) footer() {
	pdf := p.pdf
	pdf.SetDrawColor(rule.r, rule.g, rule.b)
	pdf.SetLineWidth(0.3)
	pdf.Line(marginX, footerTop, marginX+contentW, footerTop)
	asOf := p.d.AsOf
	switch {
	case asOf == "":
		asOf = "As of: not known"
	case !strings.HasPrefix(asOf, "As of"):
		asOf = "As of printing: " + asOf
	}
	if p.d.Stale {
		pdf.SetFont("noto", "B", 8)
		pdf.SetTextColor(amber.r, amber.g, amber.b)
	} else {
		pdf.SetFont("noto", "", 8)
		pdf.SetTextColor(ink.r, ink.g, ink.b)
	}
	pdf.SetXY(marginX, footerTop+1)
	pdf.CellFormat(contentW, 4.2, asOf, "", 0, "LM", false, 0, "")
	pdf.SetFont("noto", "", 8)
	pdf.SetTextColor(grey.r, grey.g, grey.b)
	pdf.SetXY(marginX, footerTop+5.2)
	printed := "Printed by " + p.d.PrintedBy + " on " + p.d.PrintedAt.Format("2 Jan 2006 at 15:04")
	pdf.CellFormat(contentW-30, 4.2, printed, "", 0, "LM", false, 0, "")
	pdf.SetFont("noto", "B", 9)
	pdf.SetTextColor(ink.r, ink.g, ink.b)
	// Left-aligned: the total is filled in when the document closes, and
	// its width is not known until then.
	pdf.SetXY(marginX+contentW-24, footerTop+5.2)
	pdf.CellFormat(24, 4.2, fmt.Sprintf("Page %d of {nb}", pdf.PageNo()), "", 0, "LM", false, 0, "")
}
