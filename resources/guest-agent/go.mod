module spritely/guest-agent

go 1.19
