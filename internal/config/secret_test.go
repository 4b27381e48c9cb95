package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"gopkg.in/yaml.v3"
)

// credentialName matches the names of fields that hold a credential.
var credentialName = regexp.MustCompile(`(?i)secret|passw|token|api_?key|credential|private|cursor_?key|ref_?key`)

// notCredentials are fields whose names match credentialName but hold no
// credential, and why.
var notCredentials = map[string]string{
	"Auth.APIKeyHashes": "SHA-256 hashes of keys, which cannot be turned back into keys",
}

var secretType = reflect.TypeFor[Secret]()

// fields calls fn with the path and type of every field of t, nested
// structs included.
func fields(t reflect.Type, path string, fn func(path string, f reflect.StructField)) {
	for i := range t.NumField() {
		f := t.Field(i)
		p := strings.TrimPrefix(path+"."+f.Name, ".")
		fn(p, f)
		if f.Type.Kind() == reflect.Struct && f.Type != secretType {
			fields(f.Type, p, fn)
		}
	}
}

// holdsSecret reports whether t is a Secret or a container of Secrets.
func holdsSecret(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Map, reflect.Slice, reflect.Pointer, reflect.Array:
		return holdsSecret(t.Elem())
	}
	return t == secretType
}

// TestCredentialFieldsAreSecrets: a field whose name says it holds a
// credential is a Secret, so it cannot be shown; paths of files are not
// credentials.
func TestCredentialFieldsAreSecrets(t *testing.T) {
	found := 0
	fields(reflect.TypeFor[Config](), "", func(path string, f reflect.StructField) {
		name := f.Name + " " + f.Tag.Get("yaml")
		if !credentialName.MatchString(name) || strings.HasSuffix(f.Name, "File") {
			return
		}
		if _, ok := notCredentials[path]; ok {
			return
		}
		found++
		if !holdsSecret(f.Type) {
			t.Errorf("%s (%s) holds a credential: make it a config.Secret, or say why it is not in notCredentials", path, f.Type)
		}
	})
	if found < 5 {
		t.Fatalf("only %d credential fields found: the name pattern no longer matches them", found)
	}
}

// fillSecrets sets every Secret of v (a pointer to a struct), in fields and
// maps, to a distinct sentinel, and returns the sentinels.
func fillSecrets(v reflect.Value) []string {
	var out []string
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch {
		case v.Type() == secretType:
			s := "sentinel-" + path
			v.SetString(s)
			out = append(out, s)
		case v.Kind() == reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		case v.Kind() == reflect.Map && holdsSecret(v.Type()):
			m := reflect.MakeMap(v.Type())
			s := "sentinel-" + path
			m.SetMapIndex(reflect.ValueOf("acme"), reflect.ValueOf(Secret(s)))
			v.Set(m)
			out = append(out, s)
		}
	}
	walk(v.Elem(), "cfg")
	return out
}

// TestSecretsNeverShown: no way the configuration is shown (YAML, as
// --check-config prints it, JSON, fmt, zap) reveals a Secret's value, and
// a set Secret shows as set.
func TestSecretsNeverShown(t *testing.T) {
	cfg := Default()
	sentinels := fillSecrets(reflect.ValueOf(&cfg))
	if len(sentinels) < 5 {
		t.Fatalf("only %d secrets filled", len(sentinels))
	}
	y, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	zap.New(core).Info("config", zap.Any("config", cfg), zap.Stringer("password", cfg.Store.Elasticsearch.Password))
	var logged strings.Builder
	for _, e := range logs.All() {
		fmt.Fprintf(&logged, "%v", e.ContextMap())
	}
	shown := map[string]string{
		"yaml": string(y), "json": string(j), "zap": logged.String(),
		"%v": fmt.Sprintf("%v", cfg), "%+v": fmt.Sprintf("%+v", cfg), "%#v": fmt.Sprintf("%#v", cfg),
		"%s of a secret": fmt.Sprintf("%s %q", cfg.API.CursorKey, cfg.API.CursorKey),
	}
	for how, out := range shown {
		for _, s := range sentinels {
			if strings.Contains(out, s) {
				t.Errorf("%s shows %s:\n%s", how, s, out)
			}
		}
	}
	if !strings.Contains(string(y), "password: '[redacted]'") {
		t.Errorf("a set password does not show as set:\n%s", y)
	}
	if got := string(Secret("")); Secret("").String() != "" || got != "" {
		t.Errorf("an unset secret shows %q", Secret("").String())
	}
}
