package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// toFields turns a struct into the plain map written to a document, through
// its json tags: ints become int64, floats float64, nested structs maps.
func toFields(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("record: %T does not encode: %v", v, err)) // our own types always do
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		panic(fmt.Sprintf("record: %T does not decode: %v", v, err))
	}
	return numbers(m).(map[string]any)
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// fromFields fills v from a map read from a document. It is tolerant: a field
// of the wrong type is left zero and named in the returned problems, so one
// bad field written by another client never hides the rest of the record.
func fromFields(m map[string]any, v any, path string) (problems []string) {
	clean := make(map[string]any, len(m))
	for k, e := range m {
		clean[k] = jsonSafe(e)
	}
	b, err := json.Marshal(clean)
	if err != nil {
		return []string{path + ": unreadable"}
	}
	if err := json.Unmarshal(b, v); err == nil {
		return nil
	}
	// Retry field by field so that only the bad ones are lost.
	keys := make([]string, 0, len(clean))
	for k := range clean {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		one, _ := json.Marshal(map[string]any{k: clean[k]})
		if err := json.Unmarshal(one, v); err != nil {
			problems = append(problems, path+"."+k+": wrong type")
		}
	}
	return problems
}

// jsonSafe drops values JSON cannot carry (NaN, infinities, bytes).
func jsonSafe(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case []byte:
		return nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonSafe(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonSafe(e)
		}
		return out
	}
	return v
}

// diff returns the keys whose values differ between old and new field maps.
func diff(old, new map[string]any) []string {
	var keys []string
	for k, v := range new {
		ov, ok := old[k]
		if !ok || !sameValue(ov, v) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func sameValue(a, b any) bool {
	ab, err1 := json.Marshal(jsonSafe(a))
	bb, err2 := json.Marshal(jsonSafe(b))
	return err1 == nil && err2 == nil && bytes.Equal(ab, bb)
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}
