module conformance

go 1.19

require memsup v0.0.0

replace memsup => ../../../child-sdk/go
