package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
)

// havenTheme is Fyne's theme with larger text (shared desktops, tired eyes,
// 3 a.m.) and deeper reds, ambers and greens, so that coloured text stays
// readable on a light background. Colour is never the only signal: every
// coloured state also says what it is in words.
type havenTheme struct {
	fyne.Theme
	scale float32 // text size, from the computer's setting (textSizes)
}

// sizeDecision is the text size of a safety-critical value on the front
// sheet (CPR recommendation, clinical focus).
const sizeDecision fyne.ThemeSizeName = "havenDecision"

func newTheme(scale float32) fyne.Theme { return havenTheme{theme.DefaultTheme(), scale} }

// textSizes are the text sizes staff may choose for a computer, kept in
// its preferences under prefTextSize; every text and icon follows.
var textSizes = []struct {
	label string
	scale float32
}{{"Normal", 1}, {"Large", 1.2}, {"Largest", 1.4}}

const prefTextSize = "textSize"

func (t havenTheme) Size(n fyne.ThemeSizeName) float32 {
	s := t.scale
	if s <= 0 {
		s = 1
	}
	switch n {
	case theme.SizeNameText:
		return 15 * s
	case theme.SizeNameHeadingText:
		return 24 * s
	case theme.SizeNameSubHeadingText:
		return 19 * s
	case theme.SizeNameCaptionText:
		return 13 * s
	case sizeDecision:
		return 21 * s
	case theme.SizeNameInnerPadding:
		return 6
	case theme.SizeNameInlineIcon:
		return t.Theme.Size(n) * s
	}
	return t.Theme.Size(n)
}

// textScale is the computer's chosen text size.
func textScale(fa fyne.App) float32 {
	label := fa.Preferences().StringWithFallback(prefTextSize, textSizes[0].label)
	for _, s := range textSizes {
		if s.label == label {
			return s.scale
		}
	}
	return 1
}

// setTextSize chooses the computer's text size and redraws everything in it.
func (u *UI) setTextSize(label string) {
	u.fa.Preferences().SetString(prefTextSize, label)
	u.fa.Settings().SetTheme(newTheme(textScale(u.fa)))
}

// Color is always the light variant: the reds, ambers and greens are
// chosen for it, and a shared desktop looks the same to everyone who uses it.
func (t havenTheme) Color(n fyne.ThemeColorName, _ fyne.ThemeVariant) color.Color {
	switch n {
	case theme.ColorNameError:
		return color.NRGBA{R: 0xb7, G: 0x1c, B: 0x1c, A: 0xff}
	case theme.ColorNameWarning:
		return color.NRGBA{R: 0x9a, G: 0x4d, B: 0x00, A: 0xff}
	case theme.ColorNameSuccess:
		return color.NRGBA{R: 0x1b, G: 0x6e, B: 0x20, A: 0xff}
	case theme.ColorNameDisabled:
		// Secondary text (who decided, when) uses this colour: it must
		// stay readable, not fade away.
		return color.NRGBA{R: 0x5f, G: 0x63, B: 0x68, A: 0xff}
	}
	return t.Theme.Color(n, theme.VariantLight)
}
