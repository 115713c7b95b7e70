package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestGenerateDefaultRoundTrip(t *testing.T) {
	c, err := parse([]byte(GenerateDefault()), nil)
	if err != nil {
		t.Fatalf("parse(GenerateDefault()): %v", err)
	}
	if want := Default(); !reflect.DeepEqual(c, want) {
		t.Errorf("parse(GenerateDefault()) = %+v\nwant %+v", c, want)
	}
}

// mappingKeys returns the dotted path of every mapping key in n, with
// whether it carries a comment.
func mappingKeys(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		for _, c := range n.Content {
			if n.Kind == yaml.DocumentNode {
				walk(prefix, c)
			}
		}
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := prefix + k.Value
			keys[path] = strings.TrimSpace(k.HeadComment+k.LineComment) != ""
			walk(path+".", v)
		}
	}
	walk("", &doc)
	return keys
}

func TestGenerateDefaultCommentsEveryKey(t *testing.T) {
	gen := mappingKeys(t, []byte(GenerateDefault()))
	out, err := Default().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	all := mappingKeys(t, out)
	for k := range all {
		commented, ok := gen[k]
		switch {
		case !ok:
			t.Errorf("GenerateDefault lacks key %s", k)
		case !commented:
			t.Errorf("GenerateDefault key %s has no comment", k)
		}
	}
	for k := range gen {
		if _, ok := all[k]; !ok {
			t.Errorf("GenerateDefault has key %s that Config does not", k)
		}
	}
	if len(all) < 30 {
		t.Errorf("only %d keys found in Marshal output", len(all))
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	c := Default()
	c.ServerName = "example.org"
	c.Node.ClientURL = "https://matrix.example.org"
	c.Cluster.Join = []string{"10.0.0.2:8300", "node3.internal:8300"}
	c.Cluster.GossipKey = "AAAAAAAAAAAAAAAAAAAAAA=="
	c.Cluster.GossipListen = "10.0.0.1:8301"
	c.Cluster.Bootstrap = false
	c.Cluster.HeartbeatTimeout = Duration{2 * time.Second}
	c.Cluster.ElectionTimeout = Duration{90 * time.Minute}
	c.TURN.URIs = []string{"turn:turn.example.org:3478?transport=udp"}
	c.TURN.SharedSecret = "s3cret"
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`heartbeat_timeout: 2s`, `election_timeout: 1h30m`, `user_lifetime: 1h`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("Marshal output lacks %q:\n%s", want, out)
		}
	}
	back, err := parse(out, nil)
	if err != nil {
		t.Fatalf("parse(Marshal()): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip = %+v\nwant %+v", back, c)
	}
}

func TestDurationUnmarshal(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{`"500ms"`, 500 * time.Millisecond, false},
		{`2s`, 2 * time.Second, false},
		{`1h30m`, 90 * time.Minute, false},
		{`1.5s`, 1500 * time.Millisecond, false},
		{`-3s`, -3 * time.Second, false}, // parsed; Validate rejects it
		{`0`, 0, false},
		{`5`, 0, true},
		{`""`, 0, true},
		{`soon`, 0, true},
		{`[1s]`, 0, true},
		{`{a: 1}`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var v struct {
				D Duration `yaml:"d"`
			}
			err := yaml.Unmarshal([]byte("d: "+tt.in+"\n"), &v)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error, got %v", v.D)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.D.Duration != tt.want {
				t.Errorf("got %v, want %v", v.D.Duration, tt.want)
			}
		})
	}
}

func TestDurationMarshal(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{500 * time.Millisecond, "500ms"},
		{2 * time.Second, "2s"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{2 * time.Minute, "2m"},
		{61 * time.Second, "1m1s"},
		{0, "0s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			out, err := yaml.Marshal(struct {
				D Duration `yaml:"d"`
			}{Duration{tt.d}})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(out)); got != "d: "+tt.want {
				t.Errorf("got %q, want %q", got, "d: "+tt.want)
			}
			var back struct {
				D Duration `yaml:"d"`
			}
			if err := yaml.Unmarshal(out, &back); err != nil || back.D.Duration != tt.d {
				t.Errorf("round trip = %v, %v; want %v", back.D.Duration, err, tt.d)
			}
		})
	}
}
