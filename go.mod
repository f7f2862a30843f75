module github.com/keyq/keyq

go 1.26
