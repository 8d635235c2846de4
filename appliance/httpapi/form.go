package httpapi

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// IsForm reports whether r's body is an HTML form (urlencoded or multipart).
func IsForm(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	ct, _, _ = strings.Cut(ct, ";")
	ct = strings.ToLower(strings.TrimSpace(ct))
	return ct == "application/x-www-form-urlencoded" || ct == "multipart/form-data"
}

// FormReturn is the form's "return" field when it is a path on this site, else "".
func FormReturn(r *http.Request) string {
	v := r.PostFormValue("return")
	if strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "//") && !strings.Contains(v, `\`) {
		return v
	}
	return ""
}

// DecodeForm reads an HTML form body (at most limit bytes) into v, a pointer to a struct,
// through the same JSON decoding an API body gets, so that a form and a JSON request end
// in the same value and the same checks. Form keys are v's JSON names:
//
//   - a nested struct's fields as "outer.inner" (a ring's "selector.tags");
//   - a slice of structs as "outer.N.inner" (N from 0 to 99); an element whose fields are
//     all empty is left out, so a page may offer blank rows;
//   - a list of strings from repeated keys or one value split at commas, spaces and
//     newlines; a number checked here, naming the field; a bool true for "on", "true",
//     "1" or "yes" (an unchecked checkbox sends nothing: false);
//   - a time as an RFC 3339 time, a browser's "2006-01-02T15:04" (UTC) or a date;
//   - a type with its own JSON decoding (a duration like "24h") as a JSON string.
//
// The key "return" (the page to go back to) is allowed; any other key v has no field for
// is refused by name, as DecodeJSON refuses an unknown JSON key. Empty values are left
// out (the field keeps its zero value).
func DecodeForm(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := r.ParseMultipartForm(limit); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("form over %d bytes: %w", limit, ErrTooLarge)
		}
		return fmt.Errorf("form: %v", err)
	}
	return FormValues(r.PostForm, v)
}

// FormValues decodes vals into v as DecodeForm does.
func FormValues(vals url.Values, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("form: decode into %T: want a pointer to a struct", v)
	}
	used := map[string]bool{"return": true}
	obj, err := formObject(vals, "", rv.Elem().Type(), used)
	if err != nil {
		return err
	}
	var unknown []string
	for k := range vals {
		if !used[k] {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("form: unknown field %s", strings.Join(unknown, ", "))
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("form: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("form: %v", err)
	}
	return nil
}

var (
	timeType        = reflect.TypeFor[time.Time]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textType        = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// jsonName is f's JSON key ("" for a field JSON leaves out).
func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return ""
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name
}

// maxFormRows bounds the rows of a slice of structs a form may give.
const maxFormRows = 100

// formObject builds the JSON object of struct type t from vals' keys under prefix,
// marking the keys it reads in used.
func formObject(vals url.Values, prefix string, t reflect.Type, used map[string]bool) (map[string]any, error) {
	obj := map[string]any{}
	for f := range t.Fields() {
		name := jsonName(f)
		if name == "" {
			continue
		}
		key := prefix + name
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && ft.Elem() != timeType {
			var rows []any
			for i := range maxFormRows {
				row, err := formObject(vals, key+"."+strconv.Itoa(i)+".", ft.Elem(), used)
				if err != nil {
					return nil, err
				}
				if len(row) > 0 {
					rows = append(rows, row)
				}
			}
			if rows != nil {
				obj[name] = rows
			}
			continue
		}
		if ft.Kind() == reflect.Struct && ft != timeType && !reflect.PointerTo(ft).Implements(unmarshalerType) {
			sub, err := formObject(vals, key+".", ft, used)
			if err != nil {
				return nil, err
			}
			if len(sub) > 0 {
				obj[name] = sub
			}
			continue
		}
		vs, ok := vals[key]
		if !ok {
			continue
		}
		used[key] = true
		val, set, err := formValue(key, ft, vs)
		if err != nil {
			return nil, err
		}
		if set {
			obj[name] = val
		}
	}
	return obj, nil
}

// formValue converts a field's form values to its JSON value; set is false for an empty one.
func formValue(key string, t reflect.Type, vs []string) (any, bool, error) {
	s := strings.TrimSpace(vs[0])
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		if s == "" {
			return nil, false, nil
		}
		for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
			if tm, err := time.Parse(layout, s); err == nil {
				return tm.UTC().Format(time.RFC3339), true, nil
			}
		}
		return nil, false, fmt.Errorf("form: %s: want a date like 2026-04-30 or a time like 2026-04-30T22:00, got %q", key, s)
	case reflect.PointerTo(t).Implements(unmarshalerType), reflect.PointerTo(t).Implements(textType):
		if s == "" {
			return nil, false, nil
		}
		return s, true, nil
	}
	switch t.Kind() {
	case reflect.String:
		return s, s != "", nil
	case reflect.Bool:
		switch strings.ToLower(s) {
		case "", "off", "false", "0", "no":
			return false, s != "", nil
		case "on", "true", "1", "yes":
			return true, true, nil
		}
		return nil, false, fmt.Errorf("form: %s: want a checkbox (on) or true/false, got %q", key, s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if s == "" {
			return nil, false, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, false, fmt.Errorf("form: %s: want a whole number, got %q", key, s)
		}
		return n, true, nil
	case reflect.Float32, reflect.Float64:
		if s == "" {
			return nil, false, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f != f {
			return nil, false, fmt.Errorf("form: %s: want a number, got %q", key, s)
		}
		return f, true, nil
	case reflect.Slice:
		if t.Elem().Kind() != reflect.String {
			break
		}
		var out []string
		for _, v := range vs {
			out = append(out, strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })...)
		}
		out = slices.DeleteFunc(out, func(s string) bool { return s == "" })
		return out, len(out) > 0, nil
	}
	return nil, false, fmt.Errorf("form: %s: this field cannot be set from a form", key)
}
