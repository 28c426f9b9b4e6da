package news2

import (
	"errors"
	"testing"
)

// normal scores 0 on every parameter; each case changes one parameter.
var normal = Observations{RespRate: 16, SpO2: 97, Systolic: 130, Pulse: 70, Consciousness: "alert", Temperature: 37.0}

// Every band edge of the chart in DOMAIN.md, both sides.
func TestParameterEdges(t *testing.T) {
	type edge struct {
		set  func(*Observations)
		name string
		want int
	}
	rr := func(v int) func(*Observations) { return func(o *Observations) { o.RespRate = v } }
	s1 := func(v int) func(*Observations) { return func(o *Observations) { o.SpO2 = v } }
	s2air := func(v int) func(*Observations) { return func(o *Observations) { o.SpO2, o.Scale2 = v, true } }
	s2o2 := func(v int) func(*Observations) {
		return func(o *Observations) { o.SpO2, o.Scale2, o.OnOxygen = v, true, true }
	}
	bp := func(v int) func(*Observations) { return func(o *Observations) { o.Systolic = v } }
	hr := func(v int) func(*Observations) { return func(o *Observations) { o.Pulse = v } }
	tc := func(v float64) func(*Observations) { return func(o *Observations) { o.Temperature = v } }
	acvpu := func(v string) func(*Observations) { return func(o *Observations) { o.Consciousness = v } }
	cases := []edge{
		{rr(8), "resp 8", 3}, {rr(9), "resp 9", 1}, {rr(11), "resp 11", 1}, {rr(12), "resp 12", 0},
		{rr(20), "resp 20", 0}, {rr(21), "resp 21", 2}, {rr(24), "resp 24", 2}, {rr(25), "resp 25", 3},
		{s1(91), "spo2 91", 3}, {s1(92), "spo2 92", 2}, {s1(93), "spo2 93", 2}, {s1(94), "spo2 94", 1},
		{s1(95), "spo2 95", 1}, {s1(96), "spo2 96", 0},
		{s2air(83), "scale2 83", 3}, {s2air(84), "scale2 84", 2}, {s2air(85), "scale2 85", 2},
		{s2air(86), "scale2 86", 1}, {s2air(87), "scale2 87", 1}, {s2air(88), "scale2 88", 0},
		{s2air(92), "scale2 92", 0}, {s2air(93), "scale2 93 air", 0}, {s2air(99), "scale2 99 air", 0},
		// on oxygen the air/oxygen parameter adds 2 as well
		{s2o2(92), "scale2 92 o2", 0 + 2}, {s2o2(93), "scale2 93 o2", 1 + 2}, {s2o2(94), "scale2 94 o2", 1 + 2},
		{s2o2(95), "scale2 95 o2", 2 + 2}, {s2o2(96), "scale2 96 o2", 2 + 2}, {s2o2(97), "scale2 97 o2", 3 + 2},
		{func(o *Observations) { o.OnOxygen = true }, "scale1 on oxygen", 2},
		{bp(90), "sbp 90", 3}, {bp(91), "sbp 91", 2}, {bp(100), "sbp 100", 2}, {bp(101), "sbp 101", 1},
		{bp(110), "sbp 110", 1}, {bp(111), "sbp 111", 0}, {bp(219), "sbp 219", 0}, {bp(220), "sbp 220", 3},
		{hr(40), "pulse 40", 3}, {hr(41), "pulse 41", 1}, {hr(50), "pulse 50", 1}, {hr(51), "pulse 51", 0},
		{hr(90), "pulse 90", 0}, {hr(91), "pulse 91", 1}, {hr(110), "pulse 110", 1}, {hr(111), "pulse 111", 2},
		{hr(130), "pulse 130", 2}, {hr(131), "pulse 131", 3},
		{acvpu("alert"), "alert", 0}, {acvpu("new-confusion"), "confusion", 3}, {acvpu("voice"), "voice", 3},
		{acvpu("pain"), "pain", 3}, {acvpu("unresponsive"), "unresponsive", 3},
		{tc(35.0), "temp 35.0", 3}, {tc(35.1), "temp 35.1", 1}, {tc(36.0), "temp 36.0", 1}, {tc(36.1), "temp 36.1", 0},
		{tc(38.0), "temp 38.0", 0}, {tc(38.1), "temp 38.1", 1}, {tc(39.0), "temp 39.0", 1}, {tc(39.1), "temp 39.1", 2},
	}
	for _, c := range cases {
		o := normal
		c.set(&o)
		r, err := Score(o)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.Total != c.want {
			t.Errorf("%s: total %d, want %d (points %v)", c.name, r.Total, c.want, r.Points)
		}
	}
}

func TestBands(t *testing.T) {
	for _, c := range []struct {
		name string
		o    Observations
		want Band
	}{
		{"all normal", normal, Low},
		{"four points, none three", Observations{RespRate: 22, SpO2: 94, Systolic: 105, Pulse: 70, Consciousness: "alert", Temperature: 37}, Low}, // 2+1+1
		{"single three", Observations{RespRate: 16, SpO2: 97, Systolic: 130, Pulse: 70, Consciousness: "voice", Temperature: 37}, LowMedium},
		{"five", Observations{RespRate: 22, SpO2: 93, Systolic: 105, Pulse: 70, Consciousness: "alert", Temperature: 37}, Medium}, // 2+2+1
		{"six", Observations{RespRate: 22, SpO2: 93, Systolic: 100, Pulse: 70, Consciousness: "alert", Temperature: 37}, Medium},  // 2+2+2
		{"seven", Observations{RespRate: 25, SpO2: 93, Systolic: 100, Pulse: 70, Consciousness: "alert", Temperature: 37}, High},  // 3+2+2
		{"many", Observations{RespRate: 30, SpO2: 85, OnOxygen: true, Systolic: 85, Pulse: 140, Consciousness: "pain", Temperature: 34}, High},
	} {
		r, err := Score(c.o)
		if err != nil {
			t.Fatal(err)
		}
		if r.Band != c.want {
			t.Errorf("%s: band %s (total %d), want %s", c.name, r.Band, r.Total, c.want)
		}
		if r.Band.Response() == "" {
			t.Errorf("%s: band %s has no response text", c.name, r.Band)
		}
	}
}

// TestIncomplete: a set with any one parameter missing, or several (a
// call's partial set that would score at least 9), gives no score, and
// Missing names exactly what was not taken; an unknown consciousness level
// is refused.
func TestIncomplete(t *testing.T) {
	for name, clear := range map[string]func(*Observations){
		"respiration rate":        func(o *Observations) { o.RespRate = 0 },
		"SpO2":                    func(o *Observations) { o.SpO2 = 0 },
		"systolic blood pressure": func(o *Observations) { o.Systolic = 0 },
		"pulse":                   func(o *Observations) { o.Pulse = 0 },
		"consciousness":           func(o *Observations) { o.Consciousness = "" },
		"temperature":             func(o *Observations) { o.Temperature = 0 },
	} {
		o := normal
		clear(&o)
		if r, err := Score(o); !errors.Is(err, ErrIncomplete) {
			t.Errorf("without %s: score %d, err %v; want ErrIncomplete", name, r.Total, err)
		}
		if m := o.Missing(); len(m) != 1 || m[0] != name {
			t.Errorf("without %s: Missing() = %q", name, m)
		}
	}
	if m := normal.Missing(); len(m) != 0 {
		t.Errorf("a complete set: Missing() = %q", m)
	}
	partial := Observations{RespRate: 30, SpO2: 85, Pulse: 140}
	if r, err := Score(partial); !errors.Is(err, ErrIncomplete) {
		t.Errorf("a partial set of respiration 30, SpO2 85, pulse 140: score %d, err %v; want ErrIncomplete", r.Total, err)
	}
	if m := partial.Missing(); len(m) != 3 {
		t.Errorf("partial set: Missing() = %q; want systolic, consciousness, temperature", m)
	}
	o := normal
	o.Consciousness = "asleep"
	if _, err := Score(o); err == nil {
		t.Fatal("Score accepted consciousness asleep")
	}
}
