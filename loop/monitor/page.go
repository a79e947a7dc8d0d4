package monitor

import _ "embed"

// livePage is the page served at / to a browser: one file, no external
// resources, that polls /varz, /loopz and /jsz and draws them.
//
//go:embed live.html
var livePage []byte
