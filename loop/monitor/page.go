package monitor

// livePage is the page served at / to a browser.
var livePage = []byte(`<!doctype html><title>evnats</title><p>evnats monitoring: <a href="varz">varz</a> <a href="connz">connz</a> <a href="subsz">subsz</a> <a href="jsz">jsz</a> <a href="metrics">metrics</a>`)
