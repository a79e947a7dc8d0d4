package jetstream

import "testing"

func TestSubjectTransform(t *testing.T) {
	cases := []struct {
		src, dest, subject, want string
		match                    bool
	}{
		{"", "", "a.b", "a.b", true},
		{"orders.*", "", "orders.x", "orders.x", true},
		{"orders.*", "", "other.x", "", false},
		{"orders.*", "copy.{{wildcard(1)}}", "orders.eu", "copy.eu", true},
		{"a.*.*", "b.$2.$1", "a.x.y", "b.y.x", true},
		{"a.*.*", "b.*.*", "a.x.y", "b.x.y", true},
		{"a.>", "b.>", "a.x.y.z", "b.x.y.z", true},
		{"a.*.>", "{{ Wildcard( 1 ) }}.rest.>", "a.x.y.z", "x.rest.y.z", true},
		{">", ">", "q", "q", true},
		{"a.*", "{{partition(3,1)}}.{{splitFromLeft(1,1)}}", "a.xy", "1.x.y", true},
		{"a.*", "b.{{split(1,-)}}", "a.--", "", false}, // nothing left: not copied
	}
	for _, tc := range cases {
		tr, err := compileTransform(SubjectTransformConfig{Source: tc.src, Destination: tc.dest})
		if err != nil {
			t.Fatalf("%q -> %q: %v", tc.src, tc.dest, err)
		}
		got, ok := tr.apply(tc.subject)
		if ok != tc.match || got != tc.want {
			t.Errorf("%q -> %q on %q: %q %v, want %q %v", tc.src, tc.dest, tc.subject, got, ok, tc.want, tc.match)
		}
	}
	for _, bad := range []SubjectTransformConfig{
		{Source: "a.*", Destination: "b.{{wildcard(2)}}"},
		{Source: "a.*", Destination: "b.$0"},
		{Source: "a.*", Destination: "b.*.*"},
		{Source: "a.*", Destination: "b.>"},
		{Source: "a.>", Destination: "b.>.c"},
		{Source: "a.*", Destination: "{{partition(3,2)}}"},
		{Source: "a.*", Destination: "{{nosuch(1)}}"},
		{Source: "a..b", Destination: "c"},
		{Source: "a.*", Destination: "b..c"},
		{Source: "a.*", Destination: "b.{{wildcard(x)}}"},
	} {
		if _, err := compileTransform(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestSourceHeader(t *testing.T) {
	s := StreamSource{Name: "O", SubjectTransforms: []SubjectTransformConfig{{Source: "a.*", Destination: "b.$1"}, {Source: "c.>"}}}
	in := s.iname()
	if in != "O a.*\fc.> b.$1\f>" {
		t.Fatalf("iname %q", in)
	}
	v := sourceHeaderValue(in, 42, "a.x", "")
	got, seq, ident, ok := parseSourceHeader(v)
	if !ok || got != in || seq != 42 || ident != "" {
		t.Fatalf("%q parsed as %q %d %q %v", v, got, seq, ident, ok)
	}
	v = sourceHeaderValue(in, 43, "a.x", "Ab3dE9zQ")
	if got, seq, ident, ok := parseSourceHeader(v); !ok || got != in || seq != 43 || ident != "Ab3dE9zQ" {
		t.Fatalf("%q parsed as %q %d %q %v", v, got, seq, ident, ok)
	}
	hdr := sourcedHeader([]byte("NATS/1.0\r\nNats-Msg-Id: 1\r\nNats-Expected-Stream: O\r\nNats-Stream-Source: Z 1 > > q\r\n\r\n"), "O 1 > > a")
	if string(hdr) != "NATS/1.0\r\nNats-Msg-Id: 1\r\nNats-Stream-Source: O 1 > > a\r\n\r\n" {
		t.Fatalf("header %q", hdr)
	}
	for _, bad := range []string{"", "O", "O x > > a", "O 1 >"} {
		if _, _, _, ok := parseSourceHeader(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
