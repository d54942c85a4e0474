// Command chatctl brings the Tencent Cloud Chat login lifecycle to the shell.
package main

import "chatctl/cmd"

func main() { cmd.Execute() }
