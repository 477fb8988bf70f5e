//go:build race

package main

// raceBuild makes TestMain build the binaries under test with -race too.
const raceBuild = true
