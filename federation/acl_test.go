package federation

import "testing"

func TestServerACL(t *testing.T) {
	cases := []struct {
		name    string
		content string
		allowed map[string]bool
	}{
		{"no ACL", "", map[string]bool{"evil.com": true, "1.2.3.4": true}},
		{"empty allow denies all", `{"deny":[]}`, map[string]bool{"good.org": false}},
		{"deny beats allow", `{"allow":["*"],"deny":["evil.com","*.evil.com"]}`, map[string]bool{
			"evil.com": false, "evil.com:8448": false, "sub.evil.com": false, "EVIL.COM": false,
			"notevil.com": true, "good.org": true}},
		{"ports are not matched", `{"allow":["good.org"]}`, map[string]bool{"good.org:1234": true, "good.org.uk": false}},
		{"question mark is one character", `{"allow":["h?st.org"]}`, map[string]bool{"host.org": true, "hst.org": false, "hoost.org": false}},
		{"IP literals", `{"allow":["*"],"allow_ip_literals":false}`, map[string]bool{
			"1.2.3.4": false, "1.2.3.4:8448": false, "[::1]:8448": false, "[2001:db8::1]": false, "host.org": true}},
		{"allow_ip_literals not a boolean", `{"allow":["*"],"allow_ip_literals":"no"}`, map[string]bool{"1.2.3.4": true}},
		{"non-string entries are ignored", `{"allow":[1,null,"ok.org"],"deny":[{}]}`, map[string]bool{"ok.org": true, "x.org": false}},
	}
	for _, c := range cases {
		acl := serverACL{}
		if c.content != "" {
			acl = parseACL([]byte(c.content))
		}
		for server, want := range c.allowed {
			if got := acl.allows(server); got != want {
				t.Errorf("%s: allows(%q) = %v, want %v", c.name, server, got, want)
			}
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		glob, s string
		want    bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*c", "abbbc", true}, {"a*c", "abcd", false},
		{"*.example.org", "x.example.org", true}, {"*.example.org", "example.org", false},
		{"a**b", "ab", true}, {"?", "", false}, {"??", "ab", true}, {"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaac", false},
	} {
		if got := globMatch(c.glob, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.glob, c.s, got, c.want)
		}
	}
}
