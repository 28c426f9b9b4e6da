// Package news2 scores the National Early Warning Score 2 from a set of
// observations, using the chart in the domain reference, and says what
// response the score calls for.
package news2

import (
	"errors"
	"fmt"
)

// Observations are one set of vital signs. A field left at zero (Missing for
// Consciousness) was not taken; NEWS2 needs all seven parameters, so Score
// refuses an incomplete set rather than under-scoring it.
type Observations struct {
	RespRate      int     // breaths per minute
	SpO2          int     // per cent
	Scale2        bool    // SpO2 scale 2: target 88–92%, e.g. hypercapnic respiratory failure
	OnOxygen      bool    // supplemental oxygen (otherwise air)
	Systolic      int     // mmHg
	Pulse         int     // beats per minute
	Consciousness string  // ACVPU: "alert", or "new-confusion", "voice", "pain", "unresponsive"
	Temperature   float64 // °C
}

// Band is the clinical response a score calls for.
type Band string

const (
	Low       Band = "low"        // 0–4 with no single parameter scoring 3
	LowMedium Band = "low-medium" // 0–4 with a single parameter scoring 3: urgent ward-based review
	Medium    Band = "medium"     // 5–6: urgent response within the hour
	High      Band = "high"       // 7 or more: emergency response
)

// Response says what to do, in the words staff use.
func (b Band) Response() string {
	switch b {
	case Low:
		return "Low: continue monitoring; inform the nurse or GP if concerned"
	case LowMedium:
		return "A single parameter scores 3: urgent review by a clinician"
	case Medium:
		return "Urgent response: clinical review within the hour"
	case High:
		return "Emergency response: immediate assessment (999 unless the plan's ceiling of treatment says otherwise)"
	}
	return ""
}

// Result is a scored set of observations.
type Result struct {
	Total  int
	Band   Band
	Points map[string]int // per parameter, for showing how the total was reached
}

// ErrIncomplete is returned when a parameter is missing.
var ErrIncomplete = errors.New("NEWS2 needs all seven observations")

// Missing lists the parameters not taken, in the words staff use, in the
// chart's order; NEWS2 needs none missing.
func (o Observations) Missing() []string {
	var missing []string
	if o.RespRate <= 0 {
		missing = append(missing, "respiration rate")
	}
	if o.SpO2 <= 0 {
		missing = append(missing, "SpO2")
	}
	if o.Systolic <= 0 {
		missing = append(missing, "systolic blood pressure")
	}
	if o.Pulse <= 0 {
		missing = append(missing, "pulse")
	}
	if o.Consciousness == "" {
		missing = append(missing, "consciousness")
	}
	if o.Temperature <= 0 {
		missing = append(missing, "temperature")
	}
	return missing
}

// Score computes NEWS2, or ErrIncomplete for a set with a parameter
// missing: a partial set would under-score.
func Score(o Observations) (Result, error) {
	missing := o.Missing()
	if len(missing) > 0 {
		return Result{}, fmt.Errorf("%w: missing %v", ErrIncomplete, missing)
	}
	cons, ok := consciousness[o.Consciousness]
	if !ok {
		return Result{}, fmt.Errorf("consciousness %q is not one of alert, new-confusion, voice, pain, unresponsive", o.Consciousness)
	}
	p := map[string]int{
		"respiration":   respiration(o.RespRate),
		"spo2":          spo2(o.SpO2, o.Scale2, o.OnOxygen),
		"air-or-oxygen": oxygen(o.OnOxygen),
		"systolic":      systolic(o.Systolic),
		"pulse":         pulse(o.Pulse),
		"consciousness": cons,
		"temperature":   temperature(o.Temperature),
	}
	r := Result{Points: p}
	three := false
	for _, v := range p {
		r.Total += v
		if v == 3 {
			three = true
		}
	}
	switch {
	case r.Total >= 7:
		r.Band = High
	case r.Total >= 5:
		r.Band = Medium
	case three:
		r.Band = LowMedium
	default:
		r.Band = Low
	}
	return r, nil
}

var consciousness = map[string]int{"alert": 0, "new-confusion": 3, "voice": 3, "pain": 3, "unresponsive": 3}

func respiration(v int) int {
	switch {
	case v <= 8:
		return 3
	case v <= 11:
		return 1
	case v <= 20:
		return 0
	case v <= 24:
		return 2
	}
	return 3
}

func spo2(v int, scale2, onOxygen bool) int {
	if !scale2 {
		switch {
		case v <= 91:
			return 3
		case v <= 93:
			return 2
		case v <= 95:
			return 1
		}
		return 0
	}
	switch {
	case v <= 83:
		return 3
	case v <= 85:
		return 2
	case v <= 87:
		return 1
	case v <= 92:
		return 0
	case !onOxygen:
		return 0 // ≥93 on air
	case v <= 94:
		return 1
	case v <= 96:
		return 2
	}
	return 3
}

func oxygen(on bool) int {
	if on {
		return 2
	}
	return 0
}

func systolic(v int) int {
	switch {
	case v <= 90:
		return 3
	case v <= 100:
		return 2
	case v <= 110:
		return 1
	case v <= 219:
		return 0
	}
	return 3
}

func pulse(v int) int {
	switch {
	case v <= 40:
		return 3
	case v <= 50:
		return 1
	case v <= 90:
		return 0
	case v <= 110:
		return 1
	case v <= 130:
		return 2
	}
	return 3
}

// temperature compares tenths of a degree so 36.05 and 36.1 fall as
// charted (the chart's bands are 35.1–36.0, 36.1–38.0 and so on).
func temperature(t float64) int {
	tenths := int(t*10 + 0.5)
	switch {
	case tenths <= 350:
		return 3
	case tenths <= 360:
		return 1
	case tenths <= 380:
		return 0
	case tenths <= 390:
		return 1
	}
	return 2
}
