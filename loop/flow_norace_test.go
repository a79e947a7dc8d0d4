//go:build !race

package loop_test

const flowScale = 1
