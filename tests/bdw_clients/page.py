# page.py OUT: a large HTML page (a table of 4,000 rows with links) for w3m.
import sys
rows = ''.join('<tr><td>%d</td><td><a href="x%d.html">link %d</a></td><td>%s</td></tr>\n'
               % (i, i, i, 'word ' * (i % 7)) for i in range(4000))
open(sys.argv[1], 'w').write('<html><body><h1>T</h1><table>' + rows + '</table></body></html>')
