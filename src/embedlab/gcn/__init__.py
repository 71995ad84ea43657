"""Two-layer GCN node classification (Kipf & Welling, ICLR 2017) with a learned node table
(paper 003, the KD supplement, eq. 2-3): plain lookup or KD codes."""
