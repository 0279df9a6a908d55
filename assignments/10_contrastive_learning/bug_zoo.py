from tools.zoo import Bug
BUGS: list[Bug] = []
